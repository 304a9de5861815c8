package ledger

import (
	"os"
	"path/filepath"
	"testing"
)

// A kill that lands as Badger creates a value log file leaves it empty, and Badger then
// refuses to open the directory ("Create a new file"): the ledger removes the empty file and
// opens, with every payment it held (found by TestKillUnderPaidLoad's kills during start-up).
func TestOpensAfterAKillLeftAnEmptyValueLog(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	create(t, l, alice, 100, 10)
	if r := pay(t, l, alice, 5, 5); r.Outcome != Accepted {
		t.Fatalf("pay: %v", r.Outcome)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "999999.vlog")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openDir(t, dir)
	defer l.Close()
	if c, err := l.Channel(alice); err != nil || c == nil || c.Balance.Int64() != 5 {
		t.Fatalf("the channel after reopening: %+v %v", c, err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("the empty value log is still there: %v", err)
	}
}
