package gossip

import (
	"encoding/binary"
	"fmt"
)

// Bodies of the envelopes. Integers are big endian; a vector is a uint32
// length followed by its bytes; a list is a uint32 count followed by its
// elements; a bool is one byte, 0 or 1. Decoders accept exactly the encoding
// the encoders produce (no trailing bytes, no other bool values), so every
// body has one encoding and decode-then-encode gives back the same bytes.

// HashLen is the length of a payload hash (SHA-256).
const HashLen = 32

// Hash identifies a large payload by its SHA-256 digest.
type Hash [HashLen]byte

// KeyPackageRequest asks a peer for one of its KeyPackages.
type KeyPackageRequest struct {
	CipherSuite uint16 // the MLS cipher suite the KeyPackage must use
}

// WelcomeMessage delivers an MLS Welcome for a group to a new member.
type WelcomeMessage struct {
	GroupID []byte
	Welcome []byte
}

// CommitsRequest asks for the decided Commits of a group from an epoch on.
type CommitsRequest struct {
	GroupID    []byte
	SinceEpoch uint64 // the first epoch whose deciding Commit is wanted
	Limit      uint32 // at most this many records; the server may send fewer
}

// CommitRecord is one decided Commit with the certificate that proves it was
// decided. Epoch is the epoch the Commit ends.
type CommitRecord struct {
	Epoch       uint64
	Commit      []byte
	Certificate []byte
}

// CommitsResponse is one page of CommitRecords in epoch order.
type CommitsResponse struct {
	Commits []CommitRecord
	More    bool // more records follow; ask again from the next epoch
}

// MessagesRequest asks for a group's stored ciphertexts after a cursor. The
// cursor is opaque to this package; an empty cursor means from the start of
// the retention window.
type MessagesRequest struct {
	GroupID []byte
	Cursor  []byte
	Limit   uint32
}

// MessagesResponse is one page of stored ciphertexts.
type MessagesResponse struct {
	Messages [][]byte
	Next     []byte // cursor to resume from
	More     bool
}

// DirectMessage is a message for one member, such as a consensus vote sent
// to the proposer.
type DirectMessage struct {
	GroupID []byte
	Payload []byte
}

// PayloadRequest asks a peer for a payload it announced or forwarded.
type PayloadRequest struct {
	Hash Hash
}

// PayloadRef stands in on gossip for a payload too large to gossip. Kind is
// the kind the payload would have had inline.
type PayloadRef struct {
	Kind Kind
	Size uint32
	Hash Hash
}

// ErrorBody is a stream's error response.
type ErrorBody struct {
	Code    ErrorCode
	Message string
}

// ErrorCode classifies an error response.
type ErrorCode uint16

// Error codes sent on streams.
const (
	CodeInternal    ErrorCode = 1 // the handler failed
	CodeNotFound    ErrorCode = 2 // nothing to serve for this request
	CodeBadRequest  ErrorCode = 3 // the request did not parse or was refused
	CodeUnavailable ErrorCode = 4 // the node does not serve this protocol
	CodeBusy        ErrorCode = 5 // too many concurrent requests; retry later
)

// encoder appends wire values to a buffer.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) vec(v []byte) { e.u32(uint32(len(v))); e.b = append(e.b, v...) }
func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// decoder reads wire values, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("need %d bytes, have %d", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// vec reads a length-prefixed byte vector of at most max bytes. The result
// is a copy only in the sense that it is capped; it aliases the input.
func (d *decoder) vec(what string, max int) []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		d.fail("%s of %d bytes exceeds %d", what, n, max)
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) boolean() bool {
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bool byte %d", v)
		return false
	}
}

// count reads a list length, rejecting counts that cannot fit in the
// remaining bytes given each element's minimum size.
func (d *decoder) count(what string, minElem int) int {
	n := d.u32()
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(minElem) > uint64(len(d.b)) {
		d.fail("%s count %d cannot fit in %d bytes", what, n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) groupID() []byte {
	id := d.vec("group id", MaxGroupIDLen)
	if d.err == nil && len(id) == 0 {
		d.fail("empty group id")
	}
	return id
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes after %s", len(d.b), what)
	}
	if d.err != nil {
		return fmt.Errorf("gossip: decoding %s: %w", what, d.err)
	}
	return nil
}

func checkGroupID(id []byte) error {
	if len(id) == 0 || len(id) > MaxGroupIDLen {
		return fmt.Errorf("gossip: group id of %d bytes, want 1..%d", len(id), MaxGroupIDLen)
	}
	return nil
}

// Marshal encodes r.
func (r KeyPackageRequest) Marshal() []byte {
	var e encoder
	e.u16(r.CipherSuite)
	return e.b
}

// Unmarshal decodes r from b.
func (r *KeyPackageRequest) Unmarshal(b []byte) error {
	d := decoder{b: b}
	r.CipherSuite = d.u16()
	return d.finish("keypackage request")
}

// Marshal encodes w.
func (w WelcomeMessage) Marshal() []byte {
	var e encoder
	e.vec(w.GroupID)
	e.vec(w.Welcome)
	return e.b
}

// Unmarshal decodes w from b.
func (w *WelcomeMessage) Unmarshal(b []byte) error {
	d := decoder{b: b}
	w.GroupID = d.groupID()
	w.Welcome = d.vec("welcome", MaxEnvelopeBody)
	return d.finish("welcome")
}

// Marshal encodes r.
func (r CommitsRequest) Marshal() []byte {
	var e encoder
	e.vec(r.GroupID)
	e.u64(r.SinceEpoch)
	e.u32(r.Limit)
	return e.b
}

// Unmarshal decodes r from b.
func (r *CommitsRequest) Unmarshal(b []byte) error {
	d := decoder{b: b}
	r.GroupID = d.groupID()
	r.SinceEpoch = d.u64()
	r.Limit = d.u32()
	return d.finish("commits request")
}

// Marshal encodes r.
func (r CommitsResponse) Marshal() []byte {
	var e encoder
	e.u32(uint32(len(r.Commits)))
	for _, c := range r.Commits {
		e.u64(c.Epoch)
		e.vec(c.Commit)
		e.vec(c.Certificate)
	}
	e.boolean(r.More)
	return e.b
}

// Unmarshal decodes r from b.
func (r *CommitsResponse) Unmarshal(b []byte) error {
	d := decoder{b: b}
	n := d.count("commit records", 16)
	r.Commits = nil
	for i := 0; i < n && d.err == nil; i++ {
		var c CommitRecord
		c.Epoch = d.u64()
		c.Commit = d.vec("commit", MaxEnvelopeBody)
		c.Certificate = d.vec("certificate", MaxEnvelopeBody)
		r.Commits = append(r.Commits, c)
	}
	r.More = d.boolean()
	return d.finish("commits response")
}

// Marshal encodes r.
func (r MessagesRequest) Marshal() []byte {
	var e encoder
	e.vec(r.GroupID)
	e.vec(r.Cursor)
	e.u32(r.Limit)
	return e.b
}

// Unmarshal decodes r from b.
func (r *MessagesRequest) Unmarshal(b []byte) error {
	d := decoder{b: b}
	r.GroupID = d.groupID()
	r.Cursor = d.vec("cursor", maxCursorLen)
	r.Limit = d.u32()
	return d.finish("messages request")
}

// maxCursorLen bounds sync cursors.
const maxCursorLen = 1024

// Marshal encodes r.
func (r MessagesResponse) Marshal() []byte {
	var e encoder
	e.u32(uint32(len(r.Messages)))
	for _, m := range r.Messages {
		e.vec(m)
	}
	e.vec(r.Next)
	e.boolean(r.More)
	return e.b
}

// Unmarshal decodes r from b.
func (r *MessagesResponse) Unmarshal(b []byte) error {
	d := decoder{b: b}
	n := d.count("messages", 4)
	r.Messages = nil
	for i := 0; i < n && d.err == nil; i++ {
		r.Messages = append(r.Messages, d.vec("message", MaxEnvelopeBody))
	}
	r.Next = d.vec("cursor", maxCursorLen)
	r.More = d.boolean()
	return d.finish("messages response")
}

// Marshal encodes m.
func (m DirectMessage) Marshal() []byte {
	var e encoder
	e.vec(m.GroupID)
	e.vec(m.Payload)
	return e.b
}

// Unmarshal decodes m from b.
func (m *DirectMessage) Unmarshal(b []byte) error {
	d := decoder{b: b}
	m.GroupID = d.groupID()
	m.Payload = d.vec("payload", MaxEnvelopeBody)
	return d.finish("direct message")
}

// Marshal encodes r.
func (r PayloadRequest) Marshal() []byte { return append([]byte(nil), r.Hash[:]...) }

// Unmarshal decodes r from b.
func (r *PayloadRequest) Unmarshal(b []byte) error {
	d := decoder{b: b}
	copy(r.Hash[:], d.take(HashLen))
	return d.finish("payload request")
}

// Marshal encodes r.
func (r PayloadRef) Marshal() []byte {
	var e encoder
	e.u8(uint8(r.Kind))
	e.u32(r.Size)
	e.b = append(e.b, r.Hash[:]...)
	return e.b
}

// Unmarshal decodes r from b. The referenced kind must be a gossip kind
// other than PayloadRef itself.
func (r *PayloadRef) Unmarshal(b []byte) error {
	d := decoder{b: b}
	r.Kind = Kind(d.u8())
	r.Size = d.u32()
	copy(r.Hash[:], d.take(HashLen))
	if d.err == nil && (!r.Kind.gossipKind() || r.Kind == KindPayloadRef) {
		d.fail("payload ref to kind %v", r.Kind)
	}
	return d.finish("payload ref")
}

// Marshal encodes b.
func (b ErrorBody) Marshal() []byte {
	var e encoder
	e.u16(uint16(b.Code))
	msg := b.Message
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText]
	}
	e.vec([]byte(msg))
	return e.b
}

// Unmarshal decodes b from p.
func (b *ErrorBody) Unmarshal(p []byte) error {
	d := decoder{b: p}
	b.Code = ErrorCode(d.u16())
	b.Message = string(d.vec("error text", maxErrorText))
	return d.finish("error")
}
