package devtools

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
)

// AnvilKey is anvil's first prefunded development account (a published test key).
const AnvilKey = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

// AnvilChainID is anvil's default chain id.
const AnvilChainID = 31337

// AnvilNode is an anvil process on a fixed loopback port, with its state in a file so that it
// can be stopped and started again with the same chain.
type AnvilNode struct {
	HTTP, WS, IPC string

	t     testing.TB
	bin   string
	port  int
	state string
	args  []string
	cmd   *exec.Cmd
}

// StartAnvil runs anvil on a free loopback port (and an IPC socket in a temporary directory)
// for the duration of the test, with the extra command-line arguments given.
func StartAnvil(t testing.TB, args ...string) *AnvilNode {
	t.Helper()
	bin, err := Anvil()
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := &AnvilNode{
		HTTP: fmt.Sprintf("http://127.0.0.1:%d", port),
		WS:   fmt.Sprintf("ws://127.0.0.1:%d", port),
		IPC:  filepath.Join(dir, "anvil.ipc"),
		t:    t, bin: bin, port: port, state: filepath.Join(dir, "state.json"), args: args,
	}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// Start runs the node (again), loading the state it saved when stopped, and waits until it
// answers.
func (n *AnvilNode) Start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, append([]string{"--host", "127.0.0.1", "--port", strconv.Itoa(n.port), "--ipc", n.IPC,
		"--state", n.state, "--silent"}, n.args...)...)
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := ethclient.Dial(n.HTTP); err == nil {
			_, err = c.ChainID(context.Background())
			c.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatal("anvil did not answer within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the node gracefully (it saves its state) and waits for it.
func (n *AnvilNode) Stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
	n.cmd = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
