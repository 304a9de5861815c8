package ledger

import (
	"errors"
	"fmt"
	"time"
)

// ErrLowSpace means the ledger's file system has less free space than Options.MinFreeBytes.
// Payments are refused until space is freed rather than risk the disk filling up under
// them: Badger appends to its log through a memory map, and a write into a page the file
// system cannot allocate kills the process (SIGBUS) instead of returning an error.
var ErrLowSpace = errors.New("ledger: too little free space")

// spaceCheckInterval is how often the free space is read: Options.MinFreeBytes must cover
// what the ledger writes in that time and more.
const spaceCheckInterval = time.Second

// guardSpace starts the free-space checks, if the ledger has a minimum and a disk.
func (l *Ledger) guardSpace(inMemory bool) {
	if l.minFree == 0 || inMemory {
		return
	}
	if _, err := freeBytes(l.dir); err != nil {
		l.log.Warn("ledger: cannot read the free space; the free-space guard is off", "dir", l.dir, "err", err)
		return
	}
	l.checkSpace()
	go l.watchSpace()
}

// checkSpace reads the free space of the ledger's file system and records whether it is
// below the minimum, logging each change.
func (l *Ledger) checkSpace() {
	free, err := freeBytes(l.dir)
	if err != nil {
		// Unknown is not low: refusing payments on a failed statfs would be a guess.
		l.log.Warn("ledger: cannot read the free space", "dir", l.dir, "err", err)
		return
	}
	var low error
	if free < l.minFree {
		low = fmt.Errorf("%w on the ledger's file system: %s free in %s, at least %s required (ledger.min_free_mb)",
			ErrLowSpace, mib(free), l.dir, mib(l.minFree))
	}
	prev := l.lowSpace.Swap(&low)
	wasLow := prev != nil && *prev != nil
	switch {
	case low != nil && !wasLow:
		l.log.Error("ledger: refusing payments until space is freed", "err", low)
	case low == nil && wasLow:
		l.log.Info("ledger: free space is back; taking payments again", "dir", l.dir, "free", mib(free))
	}
}

// watchSpace checks the free space every spaceCheckInterval until the ledger closes.
func (l *Ledger) watchSpace() {
	t := time.NewTicker(spaceCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-t.C:
			l.checkSpace()
		}
	}
}

// spaceErr is ErrLowSpace, wrapped with the figures, while the free space is too low.
func (l *Ledger) spaceErr() error {
	if e := l.lowSpace.Load(); e != nil {
		return *e
	}
	return nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
