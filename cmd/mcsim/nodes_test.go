package main

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/internal/logging"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/rs/zerolog"
)

// unreachableSettings is a settings service that never answers: Get
// waits, as grpc's WaitForReady does, until the caller gives up.
type unreachableSettings struct{ mcsimv1.SettingsServiceClient }

func (unreachableSettings) Get(ctx context.Context, _ *mcsimv1.GetRequest, _ ...grpc.CallOption) (*mcsimv1.GetResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A node whose settings service is unreachable says so within a second,
// and keeps saying so, instead of staying silent until it gives up.
func TestWaitingForTheSettingsServiceIsSaidWithinASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logBuf, notice lockedBuffer // written by firstSnapshot, read here
		log := logging.New(&logBuf, logging.JSON, zerolog.InfoLevel)
		done := make(chan error, 1)
		go func() {
			_, err := firstSnapshot(t.Context(), unreachableSettings{}, "127.0.0.1:1", log, &notice)
			done <- err
		}()
		time.Sleep(settingsWaitQuiet + time.Millisecond)
		synctest.Wait()
		if !strings.Contains(logBuf.String(), `"message":"waiting for the settings service"`) ||
			!strings.Contains(notice.String(), "waiting for the settings service at 127.0.0.1:1") {
			t.Fatalf("after 1 s: log %q, notice %q; want both to say it is waiting", logBuf.String(), notice.String())
		}
		time.Sleep(settingsWaitGiveUp)
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "not reachable after 30s") {
			t.Errorf("after giving up: %v, want not reachable after 30s", err)
		}
		if n := strings.Count(notice.String(), "waiting for"); n < 5 {
			t.Errorf("said it was waiting %d times in 30 s, want every 5 s", n)
		}
	})
}
