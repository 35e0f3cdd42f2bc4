package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ErrMalformedContent reports application data that does not parse as
// Conclave content.
var ErrMalformedContent = errors.New("node: malformed content")

// Every MLS application message the node sends starts with one frame byte
// saying what follows, so chat content and consensus traffic share a group's
// message protection but never get mistaken for each other.
const (
	frameContent   byte = 0x01 // Content, below
	frameConsensus byte = 0x02 // a consensus.Message
)

// ContentVersion is the only content format version this node writes.
const ContentVersion = 1

// ContentType says what a Content's body holds. New types can be added
// without a new version; a receiver shows unknown types as unsupported.
type ContentType uint16

const (
	// ContentText is a UTF-8 text message.
	ContentText ContentType = 1
)

// MessageIDLen is the length of a message ID: random, chosen by the sender.
const MessageIDLen = 16

// Content is what a member says in a group: the plaintext inside an MLS
// application message.
//
//	struct {
//	    uint8  version = 1;
//	    uint16 content_type;
//	    opaque message_id[16];
//	    uint64 sent_at;            // Unix milliseconds, the sender's clock
//	    opaque reply_to<0..16>;    // u8 length: 0, or a message ID
//	    opaque body<0..2^32-1>;    // u32 length
//	} Content;
//
// Integers are big-endian; every field has exactly one encoding, so decode
// then encode gives back the same bytes.
type Content struct {
	Type    ContentType
	ID      [MessageIDLen]byte
	SentAt  time.Time
	ReplyTo []byte // empty, or the MessageIDLen-byte ID of an earlier message
	Body    []byte
}

const contentHeaderLen = 1 + 2 + MessageIDLen + 8 + 1

// Marshal encodes c.
func (c *Content) Marshal() ([]byte, error) {
	if len(c.ReplyTo) != 0 && len(c.ReplyTo) != MessageIDLen {
		return nil, fmt.Errorf("node: reply-to must be a %d-byte message ID, got %d bytes", MessageIDLen, len(c.ReplyTo))
	}
	if uint64(len(c.Body)) > 1<<32-1 {
		return nil, fmt.Errorf("node: content body of %d bytes is too large", len(c.Body))
	}
	b := make([]byte, 0, contentHeaderLen+len(c.ReplyTo)+4+len(c.Body))
	b = append(b, ContentVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(c.Type))
	b = append(b, c.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.SentAt.UnixMilli()))
	b = append(b, byte(len(c.ReplyTo)))
	b = append(b, c.ReplyTo...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Body)))
	return append(b, c.Body...), nil
}

// Unmarshal decodes c strictly from b: a known version, a reply-to that is
// empty or one message ID, no trailing bytes, and for text, valid UTF-8.
// The result does not alias b.
func (c *Content) Unmarshal(b []byte) error {
	if len(b) < contentHeaderLen {
		return fmt.Errorf("%w: %d bytes is shorter than the header", ErrMalformedContent, len(b))
	}
	if b[0] != ContentVersion {
		return fmt.Errorf("%w: unknown version %d", ErrMalformedContent, b[0])
	}
	var out Content
	out.Type = ContentType(binary.BigEndian.Uint16(b[1:]))
	copy(out.ID[:], b[3:3+MessageIDLen])
	ms := binary.BigEndian.Uint64(b[3+MessageIDLen:])
	if ms > 1<<62 {
		return fmt.Errorf("%w: timestamp out of range", ErrMalformedContent)
	}
	out.SentAt = time.UnixMilli(int64(ms))
	rest := b[contentHeaderLen:]
	n := int(b[contentHeaderLen-1])
	if n != 0 && n != MessageIDLen {
		return fmt.Errorf("%w: reply-to of %d bytes", ErrMalformedContent, n)
	}
	if len(rest) < n+4 {
		return fmt.Errorf("%w: truncated", ErrMalformedContent)
	}
	if n > 0 {
		out.ReplyTo = append([]byte(nil), rest[:n]...)
	}
	rest = rest[n:]
	bl := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(len(rest)) != uint64(bl) {
		return fmt.Errorf("%w: body length %d, %d bytes left", ErrMalformedContent, bl, len(rest))
	}
	out.Body = append([]byte(nil), rest...)
	if out.Type == ContentText && !utf8.Valid(out.Body) {
		return fmt.Errorf("%w: text is not valid UTF-8", ErrMalformedContent)
	}
	*c = out
	return nil
}

// commitValue is what consensus decides for an epoch: the Commit that ends
// it and the Welcome for the members it adds (empty if none), decided
// together so that whoever holds the decision can deliver the Welcome.
//
//	struct {
//	    uint8  version = 1;
//	    opaque commit<1..2^32-1>;   // MLSMessage
//	    opaque welcome<0..2^32-1>;  // MLSMessage, empty without Adds
//	} CommitValue;
type commitValue struct {
	Commit  []byte
	Welcome []byte
}

const commitValueVersion = 1

func (v commitValue) marshal() []byte {
	b := make([]byte, 0, 9+len(v.Commit)+len(v.Welcome))
	b = append(b, commitValueVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v.Commit)))
	b = append(b, v.Commit...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v.Welcome)))
	return append(b, v.Welcome...)
}

// errMalformedValue reports a consensus value that is not a commitValue.
var errMalformedValue = errors.New("node: malformed commit value")

func (v *commitValue) unmarshal(b []byte) error {
	if len(b) < 9 || b[0] != commitValueVersion {
		return errMalformedValue
	}
	cl := uint64(binary.BigEndian.Uint32(b[1:]))
	b = b[5:]
	if cl == 0 || uint64(len(b)) < cl+4 {
		return errMalformedValue
	}
	commit := b[:cl]
	b = b[cl:]
	wl := uint64(binary.BigEndian.Uint32(b))
	b = b[4:]
	if uint64(len(b)) != wl {
		return errMalformedValue
	}
	v.Commit = commit
	v.Welcome = nil
	if wl > 0 {
		v.Welcome = b
	}
	return nil
}
