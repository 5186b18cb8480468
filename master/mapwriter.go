package master

import (
	"context"
	"sync"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// mapWriter writes one term's shard maps to the store in order, one at a
// time; when writes queue up only the newest is written (each map is a
// whole replacement). It runs in its own goroutine so the loop can go on
// while a background write is on disk.
type mapWriter struct {
	reqs chan mapWrite
}

type mapWrite struct {
	m    *mcsimv1.ShardMap
	done chan error // nil for a background write
}

// runMapWriter serves writes until ctx ends. A failed background write is
// reported through failed (the loop steps down: the map is fenced or the
// store unreachable).
func runMapWriter(ctx context.Context, wg *sync.WaitGroup, write func(context.Context, *mcsimv1.ShardMap) error, failed func(error)) *mapWriter {
	w := &mapWriter{reqs: make(chan mapWrite, 256)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var batch []mapWrite
			select {
			case <-ctx.Done():
				return
			case r := <-w.reqs:
				batch = append(batch, r)
			}
		drain:
			for {
				select {
				case r := <-w.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			err := write(ctx, batch[len(batch)-1].m)
			background := false
			for _, r := range batch {
				if r.done != nil {
					r.done <- err
				} else {
					background = true
				}
			}
			if err != nil && background && ctx.Err() == nil {
				failed(err)
			}
		}
	}()
	return w
}

// background queues m and returns at once.
func (w *mapWriter) background(m *mcsimv1.ShardMap) { w.reqs <- mapWrite{m: m} }

// wait queues m and waits until it (or a newer map queued after it) is on
// disk. Writes queued before it are written first: the store never sees
// an older map after a newer one.
func (w *mapWriter) wait(ctx context.Context, m *mcsimv1.ShardMap) error {
	done := make(chan error, 1)
	select {
	case w.reqs <- mapWrite{m: m, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
