package launcher

import (
	"os"
	"sync"
)

// logFile is an in-process component's log file that may outlive the
// component's goroutines: memberlist's listeners and net/http's handlers
// cut off by a shutdown deadline can still log a line after Run returned
// and the launcher closed the file. Such a line is dropped (and counted)
// rather than failing, because zerolog reports a failed write on the
// user's terminal ("settings.log: file already closed"), which reads like
// a fault of the run when it is only the tail of a stop.
type logFile struct {
	mu      sync.Mutex
	f       *os.File
	dropped int
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		l.dropped++
		return len(p), nil
	}
	return l.f.Write(p)
}

// Close closes the file; later writes are dropped.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
