package devtools

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
)

// AnvilKey is anvil's first prefunded development account (a published test key).
const AnvilKey = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

// AnvilChainID is anvil's default chain id.
const AnvilChainID = 31337

// AnvilNode is a running anvil process.
type AnvilNode struct {
	HTTP, WS, IPC string
}

// StartAnvil runs anvil on a free loopback port (and an IPC socket in a temporary directory)
// for the duration of the test.
func StartAnvil(t testing.TB) *AnvilNode {
	t.Helper()
	bin, err := Anvil()
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ipc := filepath.Join(t.TempDir(), "anvil.ipc")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--ipc", ipc, "--silent")
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	n := &AnvilNode{
		HTTP: fmt.Sprintf("http://127.0.0.1:%d", port),
		WS:   fmt.Sprintf("ws://127.0.0.1:%d", port),
		IPC:  ipc,
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := ethclient.Dial(n.HTTP); err == nil {
			_, err = c.ChainID(context.Background())
			c.Close()
			if err == nil {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("anvil did not answer within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
