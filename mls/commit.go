package mls

// Commit applies a list of proposals and, with a path, refreshes the
// committer's keys (RFC 9420 §12.4).
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath // optional
}

func (x *Commit) marshal(e *Encoder) {
	e.Vector(func(e *Encoder) {
		for i := range x.Proposals {
			x.Proposals[i].marshal(e)
		}
	})
	e.Optional(x.Path != nil)
	if x.Path != nil {
		x.Path.marshal(e)
	}
}

func (x *Commit) unmarshal(d *Decoder) {
	*x = Commit{Proposals: []ProposalOrRef{}}
	v := d.Vector()
	for v.More() {
		var p ProposalOrRef
		p.unmarshal(v)
		x.Proposals = append(x.Proposals, p)
	}
	if d.Optional() {
		x.Path = new(UpdatePath)
		x.Path.unmarshal(d)
	}
}

// Marshal encodes the commit.
func (x *Commit) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a commit; trailing bytes are an error.
func (x *Commit) Unmarshal(b []byte) error { return decodeAll(b, x) }

// HPKECiphertext is the output of EncryptWithLabel (RFC 9420 §7.6).
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

func (x *HPKECiphertext) marshal(e *Encoder) {
	e.Opaque(x.KEMOutput)
	e.Opaque(x.Ciphertext)
}

func (x *HPKECiphertext) unmarshal(d *Decoder) {
	x.KEMOutput = d.Opaque()
	x.Ciphertext = d.Opaque()
}

// Marshal encodes the ciphertext.
func (x *HPKECiphertext) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes a ciphertext; trailing bytes are an error.
func (x *HPKECiphertext) Unmarshal(b []byte) error { return decodeAll(b, x) }

// UpdatePathNode carries the new public key of one node on the committer's
// filtered direct path and its path secret encrypted to the copath.
type UpdatePathNode struct {
	EncryptionKey       []byte // HPKEPublicKey
	EncryptedPathSecret []HPKECiphertext
}

func (x *UpdatePathNode) marshal(e *Encoder) {
	e.Opaque(x.EncryptionKey)
	e.Vector(func(e *Encoder) {
		for i := range x.EncryptedPathSecret {
			x.EncryptedPathSecret[i].marshal(e)
		}
	})
}

func (x *UpdatePathNode) unmarshal(d *Decoder) {
	x.EncryptionKey = d.Opaque()
	v := d.Vector()
	x.EncryptedPathSecret = []HPKECiphertext{}
	for v.More() {
		var c HPKECiphertext
		c.unmarshal(v)
		x.EncryptedPathSecret = append(x.EncryptedPathSecret, c)
	}
}

// UpdatePath is the committer's new leaf and path (RFC 9420 §7.6).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

func (x *UpdatePath) marshal(e *Encoder) {
	x.LeafNode.marshal(e)
	e.Vector(func(e *Encoder) {
		for i := range x.Nodes {
			x.Nodes[i].marshal(e)
		}
	})
}

func (x *UpdatePath) unmarshal(d *Decoder) {
	x.LeafNode.unmarshal(d)
	v := d.Vector()
	x.Nodes = []UpdatePathNode{}
	for v.More() {
		var n UpdatePathNode
		n.unmarshal(v)
		x.Nodes = append(x.Nodes, n)
	}
}

// Marshal encodes the update path.
func (x *UpdatePath) Marshal() ([]byte, error) { return encode(x) }

// Unmarshal decodes an update path; trailing bytes are an error.
func (x *UpdatePath) Unmarshal(b []byte) error { return decodeAll(b, x) }
