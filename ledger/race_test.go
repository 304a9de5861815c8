//go:build race

package ledger

// raceEnabled: the race detector slows the writer processes some tests kill and adds
// nothing there, since what they test happens across processes.
const raceEnabled = true
