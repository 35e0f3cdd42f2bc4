package mls

import "fmt"

// ConfirmedTranscriptHash computes the confirmed transcript hash of the
// epoch a commit creates (RFC 9420 §8.2):
//
//	Hash(interim_transcript_hash_before || ConfirmedTranscriptHashInput)
//
// where ConfirmedTranscriptHashInput is the commit's wire format, its
// FramedContent and its signature. For a group's first epoch the interim
// hash before is empty.
func ConfirmedTranscriptHash(cs CipherSuite, interimBefore []byte, commit *AuthenticatedContent) ([]byte, error) {
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	if commit.Content.ContentType != ContentTypeCommit {
		return nil, fmt.Errorf("%w: transcript hash over %v content", ErrWrongContentType, commit.Content.ContentType)
	}
	e := Encoder{buf: append(make([]byte, 0, 512), interimBefore...)}
	e.Uint16(uint16(commit.WireFormat))
	commit.Content.marshal(&e)
	e.Opaque(commit.Auth.Signature)
	input, err := e.Result()
	if err != nil {
		return nil, err
	}
	return cs.Hash(input), nil
}

// InterimTranscriptHash computes Hash(confirmed_transcript_hash ||
// InterimTranscriptHashInput), the input being the commit's confirmation
// tag as a MAC<V> (RFC 9420 §8.2). New members compute it from the
// GroupInfo's confirmation tag.
func InterimTranscriptHash(cs CipherSuite, confirmed, confirmationTag []byte) ([]byte, error) {
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	e := Encoder{buf: append(make([]byte, 0, len(confirmed)+len(confirmationTag)+4), confirmed...)}
	e.Opaque(confirmationTag)
	input, err := e.Result()
	if err != nil {
		return nil, err
	}
	return cs.Hash(input), nil
}

// ConfirmationTag computes MAC(confirmation_key, confirmed_transcript_hash),
// with the new epoch's confirmation key (RFC 9420 §6.1).
func ConfirmationTag(cs CipherSuite, confirmationKey, confirmed []byte) []byte {
	return cs.MAC(confirmationKey, confirmed)
}

// VerifyConfirmationTag checks a confirmation tag in constant time; a
// mismatch yields ErrBadConfirmationTag.
func VerifyConfirmationTag(cs CipherSuite, confirmationKey, confirmed, tag []byte) error {
	if !macEqual(ConfirmationTag(cs, confirmationKey, confirmed), tag) {
		return ErrBadConfirmationTag
	}
	return nil
}
