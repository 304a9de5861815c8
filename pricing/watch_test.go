package pricing

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait for the watcher; a reload normally takes the debounce plus a
// few milliseconds.
const waitLimit = 5 * time.Second

func table(defaultPrice int) string {
	return fmt.Sprintf("default_price: %d\nrules:\n  - {name: a, path: /a, price: %d}\n", defaultPrice, defaultPrice+1)
}

const invalidTable = "default_price: 0\nrules:\n  - {name: a, path: /a, price: -1}\n"

type reload struct {
	table *Table
	err   error
}

// syncBuffer is a log sink the watcher's goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type watchFixture struct {
	w       *Watcher
	reloads chan reload
	log     *syncBuffer
}

// startWatcher runs a watcher on path until the test ends, and checks that Run stops when
// its context is cancelled.
func startWatcher(t *testing.T, path string) *watchFixture {
	t.Helper()
	return startWatcherWith(t, path, nil)
}

// startWatcherWith is startWatcher with a built-in table (WatcherOptions.Builtin).
func startWatcherWith(t *testing.T, path string, builtin []byte) *watchFixture {
	t.Helper()
	return startWatcherOpts(t, path, WatcherOptions{Builtin: builtin})
}

// startWatcherOpts is startWatcher with options; it sets their Logger and OnReload.
func startWatcherOpts(t *testing.T, path string, opts WatcherOptions) *watchFixture {
	t.Helper()
	f := &watchFixture{reloads: make(chan reload, 16), log: &syncBuffer{}}
	opts.Logger = slog.New(slog.NewTextHandler(f.log, nil))
	opts.OnReload = func(t *Table, err error) { f.reloads <- reload{t, err} }
	w, err := NewWatcher(path, opts)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	f.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("Run did not return after cancel")
		}
	})
	return f
}

func (f *watchFixture) next(t *testing.T) reload {
	t.Helper()
	select {
	case r := <-f.reloads:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("no reload within %v; log:\n%s", waitLimit, f.log)
		return reload{}
	}
}

func wantDefault(t *testing.T, table *Table, price int64) {
	t.Helper()
	wantQuote(t, table, get("/nowhere"), price, "")
	wantQuote(t, table, get("/a"), price+1, "a")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.yaml")
	writeFile(t, path, table(1))
	f := startWatcher(t, path)
	wantDefault(t, f.w.Current(), 1)
	if g := f.w.Generation(); g != 1 {
		t.Errorf("Generation() = %d at start, want 1", g)
	}

	// Rewritten in place, as an editor does: truncate, then write.
	writeFile(t, path, table(2))
	if r := f.next(t); r.err != nil {
		t.Fatalf("reload failed: %v", r.err)
	}
	wantDefault(t, f.w.Current(), 2)
	if g := f.w.Generation(); g != 2 {
		t.Errorf("Generation() = %d after a reload, want 2", g)
	}
	if log := f.log.String(); !strings.Contains(log, "price table reloaded") || !strings.Contains(log, "rules=1") {
		t.Errorf("reload not logged with its rule count:\n%s", log)
	}

	// An invalid table is refused; the last good one stays in force.
	writeFile(t, path, invalidTable)
	r := f.next(t)
	if r.err == nil || !strings.Contains(r.err.Error(), path+`:3: rule 1 "a": price: "-1" is negative`) {
		t.Fatalf("reload of an invalid table: %v, want the located error", r.err)
	}
	wantDefault(t, f.w.Current(), 2)
	if g := f.w.Generation(); g != 2 {
		t.Errorf("Generation() = %d after a rejected reload, want 2", g)
	}
	if log := f.log.String(); !strings.Contains(log, "keeping the previous one") || !strings.Contains(log, "is negative") {
		t.Errorf("rejection not logged with its reason:\n%s", log)
	}

	// Replaced atomically by rename, as most deploy tools do.
	tmp := path + ".tmp"
	writeFile(t, tmp, table(3))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if r := f.next(t); r.err != nil {
		t.Fatalf("reload failed: %v", r.err)
	}
	wantDefault(t, f.w.Current(), 3)
}

func TestWatcherIgnoresUnrelatedChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.yaml")
	writeFile(t, path, table(1))
	f := startWatcher(t, path)
	writeFile(t, filepath.Join(dir, "other"), "x")
	// Same content: no reload. Then a real change, which must be the next reload seen.
	writeFile(t, path, table(1))
	time.Sleep(2 * DefaultDebounce)
	writeFile(t, path, table(4))
	r := f.next(t)
	if r.err != nil || r.table == nil || r.table.DefaultPrice().Int64() != 4 {
		t.Fatalf("first reload = %v, %v; want the table with default 4", r.table, r.err)
	}
	if g := f.w.Generation(); g != 2 {
		t.Errorf("Generation() = %d, want 2", g)
	}
}

// TestWatcherChangeBeforeRun checks that a change between NewWatcher and the watch starting
// is not lost.
func TestWatcherChangeBeforeRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.yaml")
	writeFile(t, path, table(1))
	reloads := make(chan reload, 4)
	w, err := NewWatcher(path, WatcherOptions{
		Logger:   slog.New(slog.DiscardHandler),
		OnReload: func(t *Table, err error) { reloads <- reload{t, err} },
	})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, table(5))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case r := <-reloads:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("change before Run not picked up")
	}
	wantDefault(t, w.Current(), 5)
	if err := w.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}
}

// TestWatcherKubernetesSwap mimics a ConfigMap volume: prices.yaml -> ..data/prices.yaml,
// ..data -> ..<timestamp>, updated by renaming a new ..data symlink over the old one.
func TestWatcherKubernetesSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "prices.yaml"), content)
	}
	version("..2024_01_01_00_00_00.1", table(1))
	if err := os.Symlink("..2024_01_01_00_00_00.1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prices.yaml")
	if err := os.Symlink(filepath.Join("..data", "prices.yaml"), path); err != nil {
		t.Fatal(err)
	}
	f := startWatcher(t, path)
	wantDefault(t, f.w.Current(), 1)

	swap := func(name, content string) {
		t.Helper()
		version(name, content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		old, err := os.Readlink(filepath.Join(dir, "..data"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
	swap("..2024_01_01_00_01_00.2", table(7))
	if r := f.next(t); r.err != nil {
		t.Fatalf("reload failed: %v", r.err)
	}
	wantDefault(t, f.w.Current(), 7)

	swap("..2024_01_01_00_02_00.3", invalidTable)
	if r := f.next(t); r.err == nil {
		t.Fatal("invalid table accepted")
	}
	wantDefault(t, f.w.Current(), 7)

	swap("..2024_01_01_00_03_00.4", table(8))
	if r := f.next(t); r.err != nil {
		t.Fatalf("reload failed: %v", r.err)
	}
	wantDefault(t, f.w.Current(), 8)
}

func TestNewWatcherRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.yaml")
	writeFile(t, path, invalidTable)
	if _, err := NewWatcher(path, WatcherOptions{}); err == nil || !strings.Contains(err.Error(), "is negative") {
		t.Errorf("NewWatcher(invalid) = %v, want the table's error", err)
	}
	if _, err := NewWatcher(filepath.Join(dir, "missing.yaml"), WatcherOptions{}); !os.IsNotExist(err) {
		t.Errorf("NewWatcher(missing) = %v, want a not-exist error", err)
	}
}

// Without a file the built-in table is in force, quietly while the directory changes; the
// file wins once it appears. Without a built-in table a missing file is an error.
func TestWatcherBuiltinUntilTheFileAppears(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.yaml")
	if _, err := NewWatcher(path, WatcherOptions{Logger: slog.New(slog.DiscardHandler)}); !os.IsNotExist(err) {
		t.Fatalf("missing file without a built-in table: %v", err)
	}
	f := startWatcherWith(t, path, []byte(table(7)))
	wantDefault(t, f.w.Current(), 7)
	if log := f.log.String(); !strings.Contains(log, "using the built-in example table") {
		t.Errorf("the built-in table is not announced:\n%s", log)
	}
	writeFile(t, filepath.Join(dir, "other.txt"), "x")
	writeFile(t, path, table(4))
	if r := f.next(t); r.err != nil {
		t.Fatalf("the file appeared: %v", r.err)
	}
	wantDefault(t, f.w.Current(), 4)
	if strings.Contains(f.log.String(), "rejected") {
		t.Errorf("a missing file was complained about:\n%s", f.log)
	}
}
