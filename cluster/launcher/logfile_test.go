package launcher

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

// A line logged after the launcher closed a component's log is dropped
// without an error, so zerolog prints nothing to the user's terminal;
// lines before the close are on disk.
func TestLogFileDropsLinesAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.log")
	f, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(f)
	log.Info().Msg("before")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Write([]byte("after\n")); err != nil || n != 6 {
		t.Errorf("Write after Close = %d, %v; want 6, nil", n, err)
	}
	if f.dropped != 1 {
		t.Errorf("dropped = %d, want 1", f.dropped)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"level":"info","message":"before"}`+"\n" {
		t.Errorf("file holds %q", b)
	}
}
