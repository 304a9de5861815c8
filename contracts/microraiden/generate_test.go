package microraiden_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/uraiden/uraiden/contracts/internal/build"
)

// The sources are µRaiden 0.2.0's, byte for byte: their git blob ids are those of the files
// at the release's tag (src/README.md), so an edit, even of whitespace, fails here.
func TestSourcesAreTheRelease(t *testing.T) {
	blobs := map[string]string{
		"RaidenMicroTransferChannels.sol": "da619b11b23aeb89a3b81b03edb40295bd84b7cd",
		"Token.sol":                       "a7f30a3fa6ce13efa6231014cb9b37adf4fc4462",
		"lib/ECVerify.sol":                "4ce98a527c37c6fc3c4bf217214ba6699ce047a8",
		"LICENSE":                         "5285f420ff222526f9afa7acf507362367132f9c",
	}
	sol, _ := filepath.Glob("src/*.sol")
	lib, _ := filepath.Glob("src/lib/*.sol")
	if n := len(sol) + len(lib); n != 3 {
		t.Errorf("src holds %d Solidity files, want the release's 3", n)
	}
	for name, want := range blobs {
		data, err := os.ReadFile(filepath.Join("src", name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", len(data))
		h.Write(data)
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("src/%s has blob id %s, not the release's %s", name, got, want)
		}
	}
}

// The committed artifact is exactly what `go generate ./contracts/...` builds from the
// sources with the pinned solc 0.4.17.
func TestCommittedArtifactIsFresh(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed: it runs solc-js, the compiler of this build")
		}
		t.Skip("node is not installed")
	}
	out := t.TempDir()
	if err := build.GenerateMicroRaiden("src", out); err != nil {
		t.Fatal(err)
	}
	const rel = "build/RaidenMicroTransferChannels.json"
	want, err := os.ReadFile(filepath.Join(out, rel))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(rel)
	if err != nil {
		t.Fatalf("%s is not committed: run go generate ./contracts/...", rel)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from a fresh build: run go generate ./contracts/...", rel)
	}
	if !bytes.Contains(want, []byte(`"compiler": "0.4.17+`)) {
		t.Errorf("the fresh build is not solc 0.4.17's")
	}
}
