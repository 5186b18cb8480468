package master

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The map writer writes in the order maps were queued, coalesces a backlog
// to the newest map, answers waiters only once their map (or a newer one)
// is written, and reports a failed background write.
func TestMapWriterOrderAndCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var written []uint64
		gate := make(chan struct{})
		write := func(_ context.Context, m *mcsimv1.ShardMap) error {
			<-gate
			mu.Lock()
			defer mu.Unlock()
			written = append(written, m.GetVersion())
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		w := runMapWriter(ctx, &wg, write, func(err error) { t.Errorf("unexpected failure: %v", err) })

		w.background(&mcsimv1.ShardMap{Version: 1}) // taken at once, blocks on gate
		synctest.Wait()
		w.background(&mcsimv1.ShardMap{Version: 2}) // backlog: coalesced into 3
		waited := make(chan error, 1)
		go func() { waited <- w.wait(context.Background(), &mcsimv1.ShardMap{Version: 3}) }()
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("wait returned (%v) before its map was written", err)
		default:
		}
		close(gate)
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
		cancel()
		wg.Wait()
		if want := []uint64{1, 3}; len(written) != 2 || written[0] != want[0] || written[1] != want[1] {
			t.Errorf("written versions %v, want %v (in order, backlog coalesced to the newest)", written, want)
		}
	})
}

func TestMapWriterReportsBackgroundFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fenced := errors.New("fenced")
		failed := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		w := runMapWriter(ctx, &wg, func(context.Context, *mcsimv1.ShardMap) error { return fenced },
			func(err error) { failed <- err })
		w.background(&mcsimv1.ShardMap{Version: 1})
		if err := <-failed; !errors.Is(err, fenced) {
			t.Errorf("failure reported as %v, want %v", err, fenced)
		}
		if err := w.wait(context.Background(), &mcsimv1.ShardMap{Version: 2}); !errors.Is(err, fenced) {
			t.Errorf("wait returned %v, want %v", err, fenced)
		}
		cancel()
		wg.Wait()
	})
}
