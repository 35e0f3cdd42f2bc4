package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// EnvelopeVersion is the only envelope version this package speaks. A peer
// that sends another version gets its message dropped and counted, so a
// future version can be introduced next to this one under a new protocol ID
// and topic prefix.
const EnvelopeVersion = 1

// envelopeHeaderLen is version (1) + kind (1) + body length (4, big endian).
const envelopeHeaderLen = 6

// MaxEnvelopeBody is the hard ceiling on any envelope body, whatever the
// protocol. Each protocol applies a tighter limit of its own (see
// docs/protocols.md); this one only guards the codec itself.
const MaxEnvelopeBody = 64 << 20

// MaxGroupIDLen bounds group IDs on the wire (MLS group_id is opaque<V>;
// Conclave creates 32-byte IDs).
const MaxGroupIDLen = 255

// maxErrorText bounds the human-readable part of an error response.
const maxErrorText = 256

// Kind says what an envelope's body holds.
type Kind uint8

// Envelope kinds. Gossip kinds travel on group topics; the others only on
// direct streams.
const (
	KindGroupMessage Kind = 0x01 // gossip: an MLS message for the group, opaque here
	KindConsensus    Kind = 0x02 // gossip: a consensus message for the group, opaque here
	KindPayloadRef   Kind = 0x03 // gossip: a PayloadRef to a payload too large for gossip

	KindError Kind = 0x10 // stream response: ErrorBody
	KindAck   Kind = 0x11 // stream response: empty body

	KindKeyPackageRequest Kind = 0x20 // KeyPackageRequest
	KindKeyPackage        Kind = 0x21 // an MLS KeyPackage, opaque here
	KindWelcome           Kind = 0x22 // WelcomeMessage
	KindCommitsRequest    Kind = 0x23 // CommitsRequest
	KindCommits           Kind = 0x24 // CommitsResponse
	KindMessagesRequest   Kind = 0x25 // MessagesRequest
	KindMessages          Kind = 0x26 // MessagesResponse
	KindDirect            Kind = 0x27 // DirectMessage
	KindPayloadRequest    Kind = 0x28 // PayloadRequest
	KindPayload           Kind = 0x29 // the payload bytes
)

var kindNames = map[Kind]string{
	KindGroupMessage: "group_message", KindConsensus: "consensus", KindPayloadRef: "payload_ref",
	KindError: "error", KindAck: "ack",
	KindKeyPackageRequest: "keypackage_request", KindKeyPackage: "keypackage",
	KindWelcome: "welcome", KindCommitsRequest: "commits_request", KindCommits: "commits",
	KindMessagesRequest: "messages_request", KindMessages: "messages", KindDirect: "direct",
	KindPayloadRequest: "payload_request", KindPayload: "payload",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(0x%02x)", uint8(k))
}

// Known reports whether k is a kind this version defines.
func (k Kind) Known() bool { _, ok := kindNames[k]; return ok }

// gossipKind reports whether k may appear on a group topic.
func (k Kind) gossipKind() bool {
	return k == KindGroupMessage || k == KindConsensus || k == KindPayloadRef
}

// Codec errors. Every decoding failure wraps one of them.
var (
	ErrMalformed   = errors.New("gossip: malformed message")
	ErrTooLarge    = errors.New("gossip: message too large")
	ErrBadVersion  = errors.New("gossip: unsupported envelope version")
	ErrUnknownKind = errors.New("gossip: unknown envelope kind")
)

// Envelope is the unit of everything Conclave puts on the wire:
//
//	struct {
//	    uint8  version = 1;
//	    uint8  kind;
//	    uint32 length;          // big endian, <= the protocol's limit
//	    opaque body[length];
//	}
//
// On gossip, one message is exactly one envelope. On a stream, envelopes are
// the frames.
type Envelope struct {
	Kind Kind
	Body []byte
}

// Marshal encodes e.
func (e Envelope) Marshal() ([]byte, error) {
	return e.AppendTo(make([]byte, 0, envelopeHeaderLen+len(e.Body)))
}

// AppendTo appends the encoding of e to b.
func (e Envelope) AppendTo(b []byte) ([]byte, error) {
	if len(e.Body) > MaxEnvelopeBody {
		return nil, fmt.Errorf("%w: envelope body of %d bytes exceeds %d", ErrTooLarge, len(e.Body), MaxEnvelopeBody)
	}
	if !e.Kind.Known() {
		return nil, fmt.Errorf("%w: %v", ErrUnknownKind, e.Kind)
	}
	b = append(b, EnvelopeVersion, byte(e.Kind))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Body)))
	return append(b, e.Body...), nil
}

// parseHeader checks an envelope header against maxBody and returns the kind
// and body length.
func parseHeader(h []byte, maxBody int) (Kind, int, error) {
	if h[0] != EnvelopeVersion {
		return 0, 0, fmt.Errorf("%w: %d", ErrBadVersion, h[0])
	}
	k := Kind(h[1])
	if !k.Known() {
		return 0, 0, fmt.Errorf("%w: %v", ErrUnknownKind, k)
	}
	n := binary.BigEndian.Uint32(h[2:6])
	if uint64(n) > uint64(maxBody) || n > MaxEnvelopeBody {
		return 0, 0, fmt.Errorf("%w: %v body of %d bytes exceeds limit %d", ErrTooLarge, k, n, maxBody)
	}
	return k, int(n), nil
}

// ParseEnvelope decodes exactly one envelope from b, whose body may be at
// most maxBody bytes. The returned body aliases b.
func ParseEnvelope(b []byte, maxBody int) (Envelope, error) {
	if len(b) < envelopeHeaderLen {
		return Envelope{}, fmt.Errorf("%w: envelope of %d bytes is shorter than its header", ErrMalformed, len(b))
	}
	k, n, err := parseHeader(b[:envelopeHeaderLen], maxBody)
	if err != nil {
		return Envelope{}, err
	}
	if len(b)-envelopeHeaderLen != n {
		return Envelope{}, fmt.Errorf("%w: envelope declares %d body bytes, has %d", ErrMalformed, n, len(b)-envelopeHeaderLen)
	}
	return Envelope{Kind: k, Body: b[envelopeHeaderLen:]}, nil
}

// ReadEnvelope reads one envelope frame from r. It checks the declared length
// against maxBody before allocating, so a peer cannot make it reserve more
// than maxBody bytes.
func ReadEnvelope(r io.Reader, maxBody int) (Envelope, error) {
	var h [envelopeHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Envelope{}, fmt.Errorf("gossip: reading envelope header: %w", err)
	}
	k, n, err := parseHeader(h[:], maxBody)
	if err != nil {
		return Envelope{}, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Envelope{}, fmt.Errorf("gossip: reading %v body of %d bytes: %w", k, n, err)
	}
	return Envelope{Kind: k, Body: body}, nil
}

// WriteEnvelope writes e to w as one frame.
func WriteEnvelope(w io.Writer, e Envelope) error {
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
