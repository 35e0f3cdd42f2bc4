package interop

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
)

// DeepRandomSeed and DeepRandomRounds generate testdata/interop/deep_random.json
// (see GenerateDeepRandom); a test checks that the file matches.
const (
	DeepRandomSeed   = 9420
	DeepRandomRounds = 16
)

// GenerateDeepRandom generates a long random membership history in the
// scenario format: a group grows, shrinks and updates over rounds, each
// round ending in one Commit that a random member makes of Update proposals
// of others, Adds by reference and by value, and Removes, after which a
// random member sends a message that two others read. The same seed gives
// the same configuration.
func GenerateDeepRandom(seed uint64, rounds int) (*Config, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x6d6c73))
	var script Script
	add := func(fields map[string]any) (int, error) {
		raw, err := json.Marshal(fields)
		if err != nil {
			return 0, err
		}
		var st Step
		if err := json.Unmarshal(raw, &st); err != nil {
			return 0, err
		}
		script = append(script, st)
		return len(script) - 1, nil
	}
	next := 0
	newActor := func() string {
		next++
		return fmt.Sprintf("actor%d", next-1)
	}
	members := []string{newActor()}
	if _, err := add(map[string]any{"action": "createGroup", "actor": members[0]}); err != nil {
		return nil, err
	}
	pick := func(from []string, not ...[]string) (string, bool) {
		var cand []string
		for _, m := range from {
			excluded := false
			for _, set := range not {
				excluded = excluded || slices.Contains(set, m)
			}
			if !excluded {
				cand = append(cand, m)
			}
		}
		if len(cand) == 0 {
			return "", false
		}
		return cand[rng.IntN(len(cand))], true
	}
	for range rounds {
		var updaters, removed []string
		for range rng.IntN(min(4, len(members))) {
			if u, ok := pick(members, updaters); ok && len(updaters)+1 < len(members) {
				updaters = append(updaters, u)
			}
		}
		committer, _ := pick(members, updaters)
		var byRef []int
		for _, u := range updaters {
			i, err := add(map[string]any{"action": "updateProposal", "actor": u})
			if err != nil {
				return nil, err
			}
			byRef = append(byRef, i)
		}
		if len(members) > 4 {
			for range rng.IntN(3) {
				if r, ok := pick(members, updaters, removed, []string{committer}); ok {
					removed = append(removed, r)
				}
			}
		}
		var joiners []string
		var byValue []map[string]any
		for j := range 1 + rng.IntN(5) {
			a := newActor()
			joiners = append(joiners, a)
			kp, err := add(map[string]any{"action": "createKeyPackage", "actor": a})
			if err != nil {
				return nil, err
			}
			if j == 0 && len(members) > 1 {
				// One Add is proposed by another member and committed by
				// reference.
				proposer, _ := pick(members, removed, []string{committer})
				i, err := add(map[string]any{"action": "addProposal", "actor": proposer, "keyPackage": kp})
				if err != nil {
					return nil, err
				}
				byRef = append(byRef, i)
				continue
			}
			byValue = append(byValue, map[string]any{"proposalType": "add", "keyPackage": kp})
		}
		for _, r := range removed {
			byValue = append(byValue, map[string]any{"proposalType": "remove", "removed": r})
		}
		var others []string
		for _, m := range members {
			if m != committer && !slices.Contains(removed, m) {
				others = append(others, m)
			}
		}
		commit := map[string]any{
			"action": "fullCommit", "actor": committer, "byReference": byRef, "byValue": byValue,
			"members": others, "joiners": joiners, "force_path": rng.IntN(2) == 0,
		}
		if _, err := add(commit); err != nil {
			return nil, err
		}
		members = append(append([]string{committer}, others...), joiners...)
		sender, _ := pick(members)
		ct, err := add(map[string]any{"action": "protect", "actor": sender, "authenticatedData": "round", "plaintext": fmt.Sprintf("from %s", sender)})
		if err != nil {
			return nil, err
		}
		var readers []string
		for range 2 {
			if r, ok := pick(members, readers, []string{sender}); ok {
				readers = append(readers, r)
				if _, err := add(map[string]any{"action": "unprotect", "actor": r, "ciphertext": ct}); err != nil {
					return nil, err
				}
			}
		}
	}
	return &Config{Scripts: map[string]Script{"random": script}}, nil
}

// MarshalConfig encodes a configuration as the files in testdata/interop
// are written.
func MarshalConfig(c *Config) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
