package pgstore_test

import (
	"testing"
	"time"

	"github.com/mcsim/mcsim/settings/store/pgstore"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
	"github.com/mcsim/mcsim/settings/store/storetest"
)

// TestChangeWhileOpeningIsSeen: another process commits a change while
// this one is between its two start-up steps (subscribing and reading the
// state). Latest shows it without any further change: it is in the read
// (LISTEN came first) or announced to the listener. Reading first and
// listening second would miss it until the next change.
func TestChangeWhileOpeningIsSeen(t *testing.T) {
	dsn := pgtest.Schema(t)
	other, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s, err := pgstore.OpenAfterListen(dsn, pgstore.Options{}, func() {
		if _, err := other.UpdateApplication(storetest.Bump); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, changed := s.Latest()
	if st.Revision == 1 {
		return
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatalf("Latest stayed at revision %d: the change committed while opening was missed", st.Revision)
	}
	if st, _ := s.Latest(); st.Revision != 1 {
		t.Fatalf("Latest = revision %d, want 1", st.Revision)
	}
}
