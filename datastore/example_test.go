package datastore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/conclave-im/conclave/datastore"
)

// The life of a group as the node drives it: created, one epoch decided and
// applied atomically, messages kept and read back.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "conclave-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := datastore.Open(ctx, datastore.Options{Dir: dir}) // Pebble, key file beside it
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	gid := []byte("group-id")
	// mls/ produces the state and secrets; the store keeps them opaque.
	if err := st.Groups().Create(ctx, datastore.NewGroup{GroupID: gid, Epoch: 0, State: []byte("state@0"), EpochSecrets: []byte("secrets@0")}); err != nil {
		log.Fatal(err)
	}
	// consensus/ must have this on disk before the vote leaves the node.
	if err := st.Consensus().SaveAcceptor(ctx, gid, 0, []byte("promised ballot 1")); err != nil {
		log.Fatal(err)
	}
	// The Commit for epoch 0 is decided: apply it in one synced batch.
	err = st.Groups().Transition(ctx, datastore.EpochTransition{
		GroupID:        gid,
		Decision:       datastore.Decision{Epoch: 0, Commit: []byte("commit"), Certificate: []byte("quorum signatures")},
		State:          []byte("state@1"),
		EpochSecrets:   []byte("secrets@1"),
		KeepPastEpochs: 8,
	})
	if err != nil {
		log.Fatal(err)
	}
	// Decrypted messages: buffered appends, newest-first reads.
	msgs := []datastore.HistoryEntry{{Epoch: 1, Body: []byte("hello")}, {Epoch: 1, Body: []byte("world")}}
	if err := st.History().Append(ctx, gid, msgs); err != nil {
		log.Fatal(err)
	}
	state, _ := st.Groups().State(ctx, gid)
	newest, _ := st.History().Newest(ctx, gid, 100)
	fmt.Printf("epoch %d, state %q\n", state.Epoch, state.State)
	for _, m := range newest {
		fmt.Printf("%d: %s\n", m.Seq, m.Body)
	}
	// Output:
	// epoch 1, state "state@1"
	// 1: hello
	// 2: world
}
