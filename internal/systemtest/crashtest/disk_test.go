//go:build linux

package crashtest

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/proctest"
)

// mountTmpfs mounts a tmpfs of the given size for the test, or skips it where mounting is
// not allowed (root with CAP_SYS_ADMIN only).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("needs a small file system of its own (mount -t tmpfs: root with CAP_SYS_ADMIN): %v %s", err, out)
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

func unmount(t *testing.T, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v %s", dir, err, out)
	}
}

// startOnTmpfs runs a service, with ledger.min_free_mb minFreeMB, whose ledger is on a
// tmpfs of its own of the given size, mounted at mnt.
func startOnTmpfs(t *testing.T, size, minFreeMB string) (s *service, p *proc, mnt string) {
	t.Helper()
	mnt = mountTmpfs(t, size)
	s = newService(t, startEnv(t, 1), serviceOptions{ledgerDir: filepath.Join(mnt, "ledger"), minFreeMB: minFreeMB})
	p = s.start()
	p.mustReady()
	return s, p, mnt
}

// freeSpace is what an unprivileged writer may still use on dir's file system.
func freeSpace(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill appends zeros to path until its file system has at most leave bytes free, or, with
// leave 0, until a write fails for want of space.
func fill(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for leave == 0 || freeSpace(t, filepath.Dir(path)) > leave {
		if _, err := f.Write(chunk); err != nil {
			if leave == 0 && errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}

// The ledger's disk fills up under a running serve (a real file system of 64 MiB, filled
// by another file): paid Checks get 503 naming the free space, never OK nor 402, and
// /readyz says why, also with the disk full to the last byte; the process keeps running,
// and once space is freed it takes payments again without a restart. Every OK is in the
// ledger.
func TestDiskFillsUp(t *testing.T) {
	s, p, mnt := startOnTmpfs(t, "64m", "16")
	ch, c := s.env.Channels[0], s.authzClient(t)
	for range 5 {
		s.mustPay(t, c, ch, price)
	}

	const why = "too little free space"
	wantSuspended := func(when string) {
		t.Helper()
		for range 20 {
			if status, body := s.pay(t, c, ch, price); status != http.StatusServiceUnavailable || !strings.Contains(body, why) {
				t.Fatalf("%s: a payment answered %d %q, want 503 saying %q", when, status, body, why)
			}
		}
		if code, body := s.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, why) {
			t.Errorf("%s: /readyz %d %s", when, code, body)
		}
	}
	filler := filepath.Join(mnt, "filler")
	fill(t, filler, 8<<20)
	proctest.WaitFor(t, "/readyz to report the disk", 10*time.Second, func() bool {
		code, _ := s.get("/readyz")
		return code == http.StatusServiceUnavailable
	})
	wantSuspended("8 MiB free")
	fill(t, filler, 0)
	time.Sleep(1500 * time.Millisecond) // a free-space check sees 0 bytes
	wantSuspended("disk full")
	if p.Exited() {
		t.Fatalf("serve exited on a full disk: %v\n%s", p.Err(), proctest.Tail(p.Output(), 20))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	proctest.WaitFor(t, "/readyz to recover", 10*time.Second, func() bool {
		code, _ := s.get("/readyz")
		return code == http.StatusOK
	})
	for range 5 {
		s.mustPay(t, c, ch, price)
	}
	log := p.Output()
	for _, want := range []string{"refusing payments until space is freed", "free space is back"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	verifyStopped(t, s)
}

// Without the free-space guard (ledger.min_free_mb: 0) the disk fills up to the last byte
// under serve: Badger's next write into its memory-mapped log faults and the process dies
// (SIGBUS) before answering, which is why the guard exists. Nothing was answered OK
// without being stored: after space is freed and serve restarted, the ledger holds every OK.
func TestDiskFullWithoutTheGuard(t *testing.T) {
	s, p, mnt := startOnTmpfs(t, "32m", "0")
	e, ch, c := s.env, s.env.Channels[0], s.authzClient(t)
	s.mustPay(t, c, ch, price)

	filler := filepath.Join(mnt, "filler")
	fill(t, filler, 0)
	okOnFullDisk := 0
	for range 5000 {
		b, sig := ch.Take(e, price)
		status, hdr, err := e.Check(t.Context(), c, ch, b, &sig)
		if err != nil {
			break // the process died answering
		}
		if status != http.StatusOK {
			t.Fatalf("payment on a full disk: %d %s", status, hdr["body"])
		}
		ch.Paid(b)
		okOnFullDisk++
	}
	select {
	case <-p.Done():
		t.Logf("without the guard: %d payments OK'd on the full disk (in log pages already allocated), then serve died: %v; %s",
			okOnFullDisk, p.Err(), firstLine(p.Output(), "SIGBUS"))
	case <-time.After(10 * time.Second):
		t.Logf("without the guard: serve survived %d payments on the full disk", okOnFullDisk)
		p.Kill()
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p = s.start()
	p.mustReady()
	s.mustPay(t, c, ch, price)
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	verifyStopped(t, s)
}

// firstLine is the first line of s containing sub, or "".
func firstLine(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// A ledger directory that cannot be written (a read-only bind mount for root, whom
// permissions do not stop; chmod 500 otherwise): serve refuses to start, exits non-zero and
// names the directory and the cause. Made writable again, the ledger is intact.
func TestReadOnlyLedgerDirectory(t *testing.T) {
	s := newService(t, startEnv(t, 1), serviceOptions{})
	s.payOnce(t)
	undo, cause := makeReadOnly(t, s.ledgerDir)
	wantRefusal(t, s.start(), s.ledgerDir, cause)
	undo()
	s.payOnce(t)
	verifyStopped(t, s)
}

// makeReadOnly makes dir unwritable for the service and returns how to undo it and the
// error text the service should report.
func makeReadOnly(t *testing.T, dir string) (undo func(), cause string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		return func() { _ = os.Chmod(dir, 0o700) }, "permission denied"
	}
	for _, args := range [][]string{{"--bind", dir, dir}, {"-o", "remount,bind,ro", dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			if args[0] == "-o" {
				unmount(t, dir)
			}
			t.Skipf("root needs a read-only bind mount (CAP_SYS_ADMIN): %v %s", err, out)
		}
	}
	mounted := true
	undo = func() {
		if mounted {
			mounted = false
			unmount(t, dir)
		}
	}
	t.Cleanup(undo)
	return undo, "read-only file system"
}
