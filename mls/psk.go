package mls

import "fmt"

// PSKInput is one pre-shared key injected into an epoch: its identifier, as
// listed in the Commit's PreSharedKey proposals or the Welcome's
// GroupSecrets, and its value (an external PSK from the application, or the
// resumption_psk of the group and epoch it names).
type PSKInput struct {
	ID  PreSharedKeyID
	PSK []byte
}

// PSKSecret chains the PSKs, in order, into the psk_secret of RFC 9420
// §8.4:
//
//	psk_extracted_[i] = Extract(0, psk_[i])
//	psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel{id, i, n}, Nh)
//	psk_secret_[i+1]  = Extract(psk_input_[i], psk_secret_[i]),  psk_secret_[0] = 0
//
// With no PSKs it returns the all-zero vector.
func PSKSecret(cs CipherSuite, psks []PSKInput) ([]byte, error) {
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	if len(psks) > 0xffff {
		return nil, fmt.Errorf("mls: %d PSKs, at most 65535", len(psks))
	}
	zero := make([]byte, cs.HashSize())
	secret := make([]byte, cs.HashSize())
	for i := range psks {
		var e Encoder
		psks[i].ID.marshal(&e)
		e.Uint16(uint16(i))
		e.Uint16(uint16(len(psks)))
		label, err := e.Result()
		if err != nil {
			return nil, fmt.Errorf("mls: encoding PSK label %d: %w", i, err)
		}
		extracted := cs.Extract(zero, psks[i].PSK)
		input, err := cs.ExpandWithLabel(extracted, "derived psk", label, cs.HashSize())
		clear(extracted)
		if err != nil {
			return nil, err
		}
		next := cs.Extract(input, secret)
		clear(input)
		clear(secret)
		secret = next
	}
	return secret, nil
}
