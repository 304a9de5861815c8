package pricing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a Watcher waits after the last change in the directory before
// it reads the file: editors and Kubernetes change several entries per update, and reading
// between them could see a half-written file.
const DefaultDebounce = 100 * time.Millisecond

// WatcherOptions configure NewWatcher.
type WatcherOptions struct {
	// Logger receives reloads and rejected files; nil means slog.Default(), because a
	// rejected table must not go unnoticed.
	Logger *slog.Logger
	// Debounce is the quiet period before a reload; 0 means DefaultDebounce.
	Debounce time.Duration
	// OnReload, if set, is called from Run after each attempt to load changed content, with
	// the new table or the reason it was rejected. Tests use it to wait for a reload.
	OnReload func(*Table, error)
	// Builtin, when set, is the table used while the file does not exist; the file wins as
	// soon as it appears. Without it a missing file is an error.
	Builtin []byte
	// Token converts prices written in tokens, in the first table and every reload; nil
	// makes them errors.
	Token *Token
}

// Watcher holds the current price table of a file and reloads it when the file changes.
// Current is safe for concurrent use and never blocks.
type Watcher struct {
	path     string
	log      *slog.Logger
	debounce time.Duration
	onReload func(*Table, error)
	token    *Token

	table   atomic.Pointer[Table]
	gen     atomic.Uint64
	running atomic.Bool

	// good and bad are the last contents loaded and rejected (hasBad says whether bad is
	// set, as an empty file is content too): changes elsewhere in the directory then cause
	// neither a reload nor a repeated complaint. Only Run uses them after NewWatcher.
	good, bad []byte
	hasBad    bool
	builtin   []byte // WatcherOptions.Builtin
}

// NewWatcher loads the table at path; a table that does not load is an error, since there is
// no previous one to keep. Call Run to follow changes.
func NewWatcher(path string, opts WatcherOptions) (*Watcher, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := path
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && opts.Builtin != nil {
		name, data, err = "built-in example table", opts.Builtin, nil
		log.Warn("pricing: no price table file: using the built-in example table until it appears", "path", path)
	}
	if err != nil {
		return nil, err
	}
	t, err := parse(name, data, Options{Token: opts.Token})
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, log: log, debounce: opts.Debounce, onReload: opts.OnReload, token: opts.Token, good: data, builtin: opts.Builtin}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	w.table.Store(t)
	w.gen.Store(1)
	w.warn(t)
	return w, nil
}

// Current returns the table in force.
func (w *Watcher) Current() *Table { return w.table.Load() }

// Generation counts the tables that have been in force: 1 after NewWatcher, plus one per
// successful reload.
func (w *Watcher) Generation() uint64 { return w.gen.Load() }

// Run follows changes to the file until ctx is cancelled, then returns nil. It watches the
// file's directory rather than the file: an atomic replace (rename over it, or Kubernetes
// swapping its ..data symlink) leaves a watch on the old file looking at nothing. Any event
// there triggers a re-read through the path, after the debounce. Run may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("pricing: Watcher.Run called twice")
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("pricing: watch %s: %w", w.path, err)
	}
	defer fw.Close()
	dir := filepath.Dir(w.path)
	if err := fw.Add(dir); err != nil {
		return fmt.Errorf("pricing: watch %s: %w", dir, err)
	}
	// The file may have changed between NewWatcher and the watch starting: check once, but
	// debounced like any change, since a writer may be half-way through it right now.
	timer := time.NewTimer(w.debounce)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("pricing: file watcher closed")
			}
			w.log.Debug("pricing: change in price table directory", "event", ev.String())
			timer.Reset(w.debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("pricing: file watcher closed")
			}
			// Typically an event queue overflow: changes may have been missed, so re-read.
			w.log.Warn("pricing: watching price table", "path", w.path, "err", err)
			timer.Reset(w.debounce)
		case <-timer.C:
			w.reload()
		}
	}
}

// reload reads the file and swaps in its table if the content changed and is valid.
func (w *Watcher) reload() {
	data, readErr := os.ReadFile(w.path)
	if errors.Is(readErr, fs.ErrNotExist) && w.builtin != nil && bytes.Equal(w.good, w.builtin) {
		return // still no file: the built-in table stays, without a complaint per event
	}
	if readErr == nil && (bytes.Equal(data, w.good) || w.hasBad && bytes.Equal(data, w.bad)) {
		return
	}
	t, err := (*Table)(nil), readErr
	if readErr == nil {
		t, err = parse(w.path, data, Options{Token: w.token})
	}
	if err != nil {
		// A read error is not remembered: the same file may read fine next time.
		w.bad, w.hasBad = data, readErr == nil
		w.log.Error("pricing: price table rejected; keeping the previous one", "path", w.path, "err", err)
	} else {
		w.good, w.bad, w.hasBad = data, nil, false
		w.table.Store(t)
		gen := w.gen.Add(1)
		w.log.Info("pricing: price table reloaded", "path", w.path, "rules", t.Len(), "generation", gen)
		w.warn(t)
	}
	if w.onReload != nil {
		w.onReload(t, err)
	}
}

// warn logs the table's Warnings.
func (w *Watcher) warn(t *Table) {
	for _, msg := range t.Warnings() {
		w.log.Warn("pricing: "+msg, "path", w.path)
	}
}
