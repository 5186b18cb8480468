// Package loadtest holds mcsim's scale measurements: benchmarks that run
// one node as a separate OS process against many in-process peers and
// measure that process alone (CPU from /proc, RSS, heartbeat throughput),
// plus the small /proc readers they need.
//
// The measurements are benchmarks, not tests: they take real time and
// report numbers; they fail only on a broken invariant (a false failover).
package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel fixes it for
// user space), so no cgo sysconf is needed.
const clockTicks = 100

// CPUTime returns the user+system CPU time process pid has used so far,
// from /proc/PID/stat (fields 14 and 15).
func CPUTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(raw)
}

// parseStatCPU reads utime+stime from a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may hold spaces, so fields are
// counted from the last ')'.
func parseStatCPU(raw []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no ')' closing the command name in %q", raw)
	}
	f := strings.Fields(string(raw[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: want at least 15 fields, got %d", len(f)+2)
	}
	var ticks int64
	for _, k := range []int{14, 15} {
		v, err := strconv.ParseInt(f[k-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: field %d: want an integer, got %q", k, f[k-3])
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// Memory returns the resident set size of process pid now and at its peak
// (VmRSS and VmHWM from /proc/PID/status), in bytes.
func Memory(pid int) (rss, peak int64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatusMemory(raw)
}

func parseStatusMemory(raw []byte) (rss, peak int64, err error) {
	found := 0
	for line := range strings.SplitSeq(string(raw), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc status: %s: want \"N kB\", got %q", key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc status: %s: want an integer, got %q", key, f[0])
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/proc status: want VmRSS and VmHWM, found %d of them", found)
	}
	return rss, peak, nil
}

// MemoryDetail is how a process's resident memory splits: what it owns
// (RssAnon), the pages of files it maps, mostly the shared mcsim binary
// (RssFile), and its proportional share of every page it maps (Pss: a page
// shared by k processes counts 1/k in each). Summed over the processes of
// one cluster, RSS counts the binary's pages once per process; PSS counts
// them once in all.
type MemoryDetail struct {
	RSS, Anon, File, PSS int64 // bytes
}

// MemoryOf reads VmRSS, RssAnon and RssFile from /proc/PID/status and Pss
// from /proc/PID/smaps_rollup.
func MemoryOf(pid int) (MemoryDetail, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return MemoryDetail{}, err
	}
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return MemoryDetail{}, err
	}
	return parseMemoryDetail(status, rollup)
}

func parseMemoryDetail(status, rollup []byte) (MemoryDetail, error) {
	var d MemoryDetail
	want := map[string]*int64{"VmRSS": &d.RSS, "RssAnon": &d.Anon, "RssFile": &d.File}
	if err := readKB(status, want, "/proc status"); err != nil {
		return d, err
	}
	if err := readKB(rollup, map[string]*int64{"Pss": &d.PSS}, "/proc smaps_rollup"); err != nil {
		return d, err
	}
	return d, nil
}

// readKB sets each key of want from "Key: N kB" lines of raw; every key
// must be there.
func readKB(raw []byte, want map[string]*int64, what string) error {
	found := 0
	for line := range strings.SplitSeq(string(raw), "\n") {
		key, val, ok := strings.Cut(line, ":")
		dst := want[key]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return fmt.Errorf("%s: %s: want \"N kB\", got %q", what, key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %s: want an integer, got %q", what, key, f[0])
		}
		*dst = kb << 10
		found++
	}
	if found != len(want) {
		return fmt.Errorf("%s: want %d of the keys %v, found %d", what, len(want), keys(want), found)
	}
	return nil
}

func keys(m map[string]*int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// ContextSwitches returns how many times the threads of process pid have
// been switched out so far, voluntarily (blocked: a sleep, a wait for I/O
// or a futex) or not, summed from /proc/PID/task/*/status. On an idle node
// nearly every switch is a wake-up, so its rate counts wake-ups: a measure
// of idle cost that, unlike CPU time, hardly depends on how loaded the
// machine is. Threads that exited are not counted.
func ContextSwitches(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		var vol, invol int64
		if err := readSwitches(raw, &vol, &invol); err != nil {
			return 0, err
		}
		total += vol + invol
	}
	return total, nil
}

// readSwitches reads voluntary_ctxt_switches and nonvoluntary_ctxt_switches.
func readSwitches(raw []byte, vol, invol *int64) error {
	found := 0
	for line := range strings.SplitSeq(string(raw), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "voluntary_ctxt_switches" && key != "nonvoluntary_ctxt_switches") {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return fmt.Errorf("/proc status: %s: want an integer, got %q", key, val)
		}
		if key == "voluntary_ctxt_switches" {
			*vol = v
		} else {
			*invol = v
		}
		found++
	}
	if found != 2 {
		return fmt.Errorf("/proc status: want voluntary_ctxt_switches and nonvoluntary_ctxt_switches, found %d", found)
	}
	return nil
}
