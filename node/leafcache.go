package node

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/conclave-im/conclave/identity"
	"github.com/conclave-im/conclave/mls"
)

// leafCacheMax bounds the verified-leaf cache; it is emptied when full
// (entries are cheap to recompute, and this keeps memory bounded whatever
// peers send).
const leafCacheMax = 8192

// verifyLeaf is identity.VerifyLeaf with the successes remembered: the
// check costs a signature verification and a curve-point validation, and
// the same leaves are checked again at every epoch (consensus membership,
// Commit validation), which at hundreds of members dominates the CPU.
func (n *Node) verifyLeaf(cs mls.CipherSuite, cred mls.Credential, sigKey []byte) (identity.LeafIdentity, error) {
	k := leafKey(cs, cred, sigKey)
	if li, ok := n.st.leaves[k]; ok {
		return li, nil
	}
	li, err := identity.VerifyLeaf(cs, cred, sigKey)
	if err != nil {
		return li, err
	}
	if len(n.st.leaves) >= leafCacheMax {
		clear(n.st.leaves)
	}
	n.st.leaves[k] = li
	return li, nil
}

// leafKey digests everything VerifyLeaf's answer depends on.
func leafKey(cs mls.CipherSuite, cred mls.Credential, sigKey []byte) [sha256.Size]byte {
	h := sha256.New()
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(cs))
	b = binary.BigEndian.AppendUint16(b, uint16(cred.Type))
	vec := func(v []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	vec(cred.Identity)
	b = binary.BigEndian.AppendUint32(b, uint32(len(cred.Certificates)))
	for _, c := range cred.Certificates {
		vec(c)
	}
	vec(sigKey)
	h.Write(b)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}
