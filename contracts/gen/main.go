// Command gen rebuilds the committed contract artifacts and Go bindings of package contracts
// from the Solidity sources, with the solc-js version pinned in package.json and the abigen of
// the go-ethereum version pinned in go.mod. Run it through `go generate ./contracts/...`.
//
// `gen microraiden`, run in contracts/microraiden, rebuilds the artifact of µRaiden's original
// 0.2.0 contract instead, with that release's compiler.
package main

import (
	"fmt"
	"os"

	"github.com/uraiden/uraiden/contracts/internal/build"
)

func main() {
	// go generate runs this in the directory of the package that asks.
	generate := build.Generate
	if len(os.Args) > 1 && os.Args[1] == "microraiden" {
		generate = build.GenerateMicroRaiden
	}
	if err := generate("src", "."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
