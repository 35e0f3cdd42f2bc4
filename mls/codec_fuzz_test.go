package mls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// Fuzz targets for every decoder in this package's core. Each asserts that
// anything that decodes re-encodes to exactly the same bytes, and that
// anything that does not decode fails with a *DecodeError.

func fuzzRoundTrip[T any, PT interface {
	*T
	wireCodec
}](f *testing.F, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v := PT(new(T))
		if err := v.Unmarshal(in); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("decode error %v is not a *DecodeError", err)
			}
			return
		}
		out, err := v.Marshal()
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip differs\n in %x\nout %x", in, out)
		}
	})
}

// messageCases loads messages.json, whose objects seed most targets.
func messageCases(f *testing.F) []map[string]hexBytes {
	var cases []map[string]hexBytes
	loadVectors(f, "messages.json", &cases)
	return cases[:20]
}

// messageSeeds returns one field of the first messages.json cases, with
// the MLSMessage header removed when wireFormat is non-zero.
func messageSeeds(f *testing.F, field string, wireFormat uint16) [][]byte {
	return seedsOf(f, messageCases(f), field, wireFormat)
}

func seedsOf(f *testing.F, cases []map[string]hexBytes, field string, wireFormat uint16) [][]byte {
	var seeds [][]byte
	for _, c := range cases {
		b := []byte(c[field])
		if wireFormat != 0 {
			if len(b) < 4 || binary.BigEndian.Uint16(b[2:]) != wireFormat {
				f.Fatalf("%s is not of wire format %d", field, wireFormat)
			}
			b = b[4:]
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzVarint(f *testing.F) {
	for _, s := range []string{"00", "3f", "4040", "7fff", "80004000", "bfffffff", "4000", "c0"} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		v := d.Varint()
		if d.Err() != nil {
			var de *DecodeError
			if !errors.As(d.Err(), &de) {
				t.Fatalf("%v is not a *DecodeError", d.Err())
			}
			return
		}
		var e Encoder
		e.Varint(v)
		if !bytes.Equal(e.Bytes(), in[:d.Offset()]) {
			t.Fatalf("varint %d re-encodes as %x, read from %x", v, e.Bytes(), in[:d.Offset()])
		}
	})
}

// opaqueList is opaque items<V><V>: a vector of vectors, exercising nested
// length prefixes of every size.
type opaqueList [][]byte

func (x *opaqueList) marshal(e *Encoder) {
	e.Vector(func(e *Encoder) {
		for _, b := range *x {
			e.Opaque(b)
		}
	})
}

func (x *opaqueList) unmarshal(d *Decoder) {
	v := d.Vector()
	*x = opaqueList{}
	for v.More() {
		*x = append(*x, v.Opaque())
	}
}

func (x *opaqueList) Marshal() ([]byte, error) { return encode(x) }
func (x *opaqueList) Unmarshal(b []byte) error { return decodeAll(b, x) }

func FuzzVectors(f *testing.F) {
	var l opaqueList = [][]byte{nil, []byte("a"), make([]byte, 64), make([]byte, 300)}
	b, _ := l.Marshal()
	fuzzRoundTrip[opaqueList](f, [][]byte{b, {0}, {2, 1, 0}})
}

func FuzzKeyPackage(f *testing.F) {
	fuzzRoundTrip[KeyPackage](f, messageSeeds(f, "mls_key_package", 5))
}

func FuzzLeafNode(f *testing.F) {
	fuzzRoundTrip[LeafNode](f, messageSeeds(f, "update_proposal", 0))
}

func FuzzRatchetTree(f *testing.F) {
	fuzzRoundTrip[TreeNodes](f, messageSeeds(f, "ratchet_tree", 0))
}

func FuzzProposal(f *testing.F) {
	cases := messageCases(f)
	var seeds [][]byte
	for field, typ := range map[string]ProposalType{
		"add_proposal": ProposalTypeAdd, "update_proposal": ProposalTypeUpdate,
		"remove_proposal": ProposalTypeRemove, "pre_shared_key_proposal": ProposalTypePSK,
		"re_init_proposal": ProposalTypeReInit, "external_init_proposal": ProposalTypeExternalInit,
		"group_context_extensions_proposal": ProposalTypeGroupContextExtensions,
	} {
		for _, s := range seedsOf(f, cases[:3], field, 0) {
			seeds = append(seeds, append(binary.BigEndian.AppendUint16(nil, uint16(typ)), s...))
		}
	}
	fuzzRoundTrip[Proposal](f, seeds)
}

func FuzzCommit(f *testing.F) {
	fuzzRoundTrip[Commit](f, messageSeeds(f, "commit", 0))
}

func FuzzWelcome(f *testing.F) {
	fuzzRoundTrip[Welcome](f, messageSeeds(f, "mls_welcome", 3))
}

func FuzzGroupInfo(f *testing.F) {
	fuzzRoundTrip[GroupInfo](f, messageSeeds(f, "mls_group_info", 4))
}

func FuzzGroupSecrets(f *testing.F) {
	fuzzRoundTrip[GroupSecrets](f, messageSeeds(f, "group_secrets", 0))
}

func FuzzCredential(f *testing.F) {
	basic, _ := (&Credential{Type: CredentialTypeBasic, Identity: []byte("alice")}).Marshal()
	x509, _ := (&Credential{Type: CredentialTypeX509, Certificates: [][]byte{[]byte("leaf"), []byte("ca")}}).Marshal()
	fuzzRoundTrip[Credential](f, [][]byte{basic, x509})
}

func FuzzGroupContext(f *testing.F) {
	var seeds [][]byte
	for _, gi := range messageSeeds(f, "mls_group_info", 4) {
		var g GroupInfo
		if err := g.Unmarshal(gi); err != nil {
			f.Fatal(err)
		}
		b, err := g.GroupContext.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	fuzzRoundTrip[GroupContext](f, seeds)
}

func FuzzExtensions(f *testing.F) {
	fuzzRoundTrip[Extensions](f, messageSeeds(f, "group_context_extensions_proposal", 0))
}

func FuzzUpdatePath(f *testing.F) {
	var seeds [][]byte
	for _, cb := range messageSeeds(f, "commit", 0) {
		var c Commit
		if err := c.Unmarshal(cb); err != nil {
			f.Fatal(err)
		}
		if c.Path != nil {
			b, err := c.Path.Marshal()
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, b)
		}
	}
	fuzzRoundTrip[UpdatePath](f, seeds)
}
