package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/shard"
)

// The pending callbacks of callback_persist (see settings/store's
// callbacks.go for what they are for). A callback keeps the sequence number
// (bigserial) of the first time its id was kept, so ListCallbacks returns
// them in that order; a Put of a kept id replaces its body in place.

// PutCallbacks keeps the callbacks in one transaction: all or none.
func (s *Store) PutCallbacks(cbs []*mcsimv1.PendingCallback) error {
	if err := store.CheckCallbacks(cbs); err != nil {
		return err
	}
	if len(cbs) == 0 {
		return nil
	}
	// One row per id, the last body given, in the order ids first appear
	// (an id twice in one statement is an error in ON CONFLICT DO UPDATE).
	ids := make([]string, 0, len(cbs))
	bodies := make([][]byte, 0, len(cbs))
	at := make(map[string]int, len(cbs))
	for _, cb := range cbs {
		b, err := proto.Marshal(cb)
		if err != nil {
			return fmt.Errorf("store: put callbacks: callback %q: %w", cb.GetId(), err)
		}
		if i, ok := at[cb.GetId()]; ok {
			bodies[i] = b
			continue
		}
		at[cb.GetId()] = len(ids)
		ids, bodies = append(ids, cb.GetId()), append(bodies, b)
	}
	return s.inTx("put callbacks", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO mcsim_callbacks (id, body)
			SELECT id, body FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS t(id, body, n) ORDER BY n
			ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body`, ids, bodies)
		return err
	})
}

// DeleteCallbacks forgets the callbacks of the given ids; unknown ids are
// ignored.
func (s *Store) DeleteCallbacks(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.inTx("delete callbacks", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM mcsim_callbacks WHERE id = ANY($1)`, ids)
		return err
	})
}

// ListCallbacks returns the kept callbacks of shard sh of shards, in the
// order first kept.
func (s *Store) ListCallbacks(sh, shards int) ([]*mcsimv1.PendingCallback, error) {
	if err := store.CheckCallbackShard(sh, shards); err != nil {
		return nil, err
	}
	ctx, done, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.pool.Query(ctx, `SELECT seq, body FROM mcsim_callbacks ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("store: list callbacks: %w", err)
	}
	var (
		out  []*mcsimv1.PendingCallback
		seq  int64
		body []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &body}, func() error {
		cb := &mcsimv1.PendingCallback{}
		if err := proto.Unmarshal(body, cb); err != nil {
			return fmt.Errorf("callback at %d: %w", seq, err)
		}
		if shard.Of(cb.GetRecipientId(), shards) == sh {
			out = append(out, cb)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list callbacks: %w", err)
	}
	return out, nil
}
