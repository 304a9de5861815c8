// Command gen rebuilds the committed contract artifacts and Go bindings of package contracts
// from the Solidity sources, with the solc-js version pinned in package.json and the abigen of
// the go-ethereum version pinned in go.mod. Run it through `go generate ./contracts/...`.
package main

import (
	"fmt"
	"os"

	"github.com/uraiden/uraiden/contracts/internal/build"
)

func main() {
	// go generate runs this in the contracts directory.
	if err := build.Generate("src", "."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
