// Package devtools locates, and installs on first use, the pinned npm tools the build and the
// tests rely on: the Solidity compiler (solc-js) and a local Ethereum node (anvil). The pins
// live in package.json and package-lock.json at the repository root, so a fresh clone needs
// nothing but Go, Node.js and npm.
package devtools

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
)

// RepoRoot returns the directory holding go.mod, searching upwards from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devtools: no go.mod above the working directory")
		}
		dir = parent
	}
}

var installOnce = sync.OnceValues(install)

// Path returns the absolute path of a file under the repository's node_modules, running
// `npm ci` first if the pinned packages are not installed yet.
func Path(rel string) (string, error) {
	root, err := installOnce()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "node_modules", rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("devtools: %s missing after npm ci: %w", rel, err)
	}
	return p, nil
}

// Solc returns the directory of the pinned solc-js package (load it with require in node).
func Solc() (string, error) { return Path("solc") }

// Anvil returns the path of the pinned anvil binary.
func Anvil() (string, error) { return Path("@foundry-rs/anvil-linux-amd64/bin/anvil") }

// install runs `npm ci` once per machine state, under an exclusive file lock because `go test
// ./...` runs several test binaries at once.
func install() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(root, ".npm-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("devtools: open lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("devtools: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	lockfile, err := os.Stat(filepath.Join(root, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("devtools: %w", err)
	}
	// npm writes node_modules/.package-lock.json on every install; newer than the lock file
	// means the installed tree is the pinned one.
	if installed, err := os.Stat(filepath.Join(root, "node_modules", ".package-lock.json")); err == nil &&
		!installed.ModTime().Before(lockfile.ModTime()) {
		return root, nil
	}
	cmd := exec.CommandContext(context.Background(), "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("devtools: npm ci in %s: %w\n%s", root, err, out)
	}
	return root, nil
}

// Esbuild returns the directory of the pinned esbuild package, which the paywall's build
// script (authz/paywall/build.mjs) imports.
func Esbuild() (string, error) { return Path("esbuild") }

// Tsc returns the path of the pinned TypeScript compiler's script (run it with node), which
// checks the JavaScript client's JSDoc types.
func Tsc() (string, error) { return Path("typescript/bin/tsc") }
