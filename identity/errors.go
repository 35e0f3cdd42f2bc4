package identity

import "errors"

// Errors reported by the package. They are wrapped with context; test for
// them with errors.Is.
var (
	// ErrInvalidPublicKey reports bytes that are not an acceptable Ed25519
	// identity key: wrong length, not a canonical point encoding, not on the
	// curve, or of small order (a key anyone could sign for).
	ErrInvalidPublicKey = errors.New("identity: invalid identity public key")

	// ErrInvalidPeerID reports a string that is not the base58 peer ID of an
	// Ed25519 identity key.
	ErrInvalidPeerID = errors.New("identity: invalid peer ID")

	// ErrMalformedNodeIdentity reports a stored node identity that does not
	// parse or whose private and public halves disagree (corruption).
	ErrMalformedNodeIdentity = errors.New("identity: malformed node identity")

	// ErrMalformedCredential reports credential bytes that do not parse
	// strictly: truncated, trailing data, wrong lengths, unknown version,
	// unsupported cipher suite or an invalid key.
	ErrMalformedCredential = errors.New("identity: malformed credential")

	// ErrUnsupportedCredentialType reports an MLS credential whose type
	// Conclave does not accept (anything but Conclave and basic).
	ErrUnsupportedCredentialType = errors.New("identity: unsupported credential type")

	// ErrCredentialSuiteMismatch reports a Conclave credential issued for a
	// different cipher suite than the group's.
	ErrCredentialSuiteMismatch = errors.New("identity: credential issued for another cipher suite")

	// ErrCredentialKeyMismatch reports a Conclave credential issued for a
	// different signature key than the leaf that carries it.
	ErrCredentialKeyMismatch = errors.New("identity: credential issued for another leaf signature key")

	// ErrBadCredentialSignature reports a Conclave credential whose binding
	// signature does not verify under its identity key.
	ErrBadCredentialSignature = errors.New("identity: bad credential signature")

	// ErrNotSuccessor reports a leaf whose new credential (in an Update or
	// a Commit's UpdatePath) names a different client than the credential
	// it replaces.
	ErrNotSuccessor = errors.New("identity: new credential names a different client")

	// ErrInvalidSafetyCode reports text that is not a safety code: it must
	// hold exactly SafetyCodeDigits decimal digits, optionally grouped by
	// spaces, tabs, newlines or dashes.
	ErrInvalidSafetyCode = errors.New("identity: invalid safety code")
)
