package build

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/uraiden/uraiden/internal/dev/devtools"
)

// MicroRaiden is the contract of µRaiden's own 0.2.0 release that the compatibility tests
// deploy, compiled as that release was: solc 0.4.17 (its CI's compiler), optimizer off (its
// populus project.json), the EVM rules that compiler defaults to.
const (
	MicroRaiden         = "RaidenMicroTransferChannels"
	MicroRaidenCompiler = "solc-0.4.17"
)

// GenerateMicroRaiden compiles µRaiden 0.2.0's sources in srcDir (kept in their original
// layout, lib/ included) and writes outDir/build/RaidenMicroTransferChannels.json.
func GenerateMicroRaiden(srcDir, outDir string) error {
	solc, err := devtools.Path(MicroRaidenCompiler)
	if err != nil {
		return err
	}
	sources := map[string]map[string]string{}
	err = filepath.WalkDir(srcDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".sol") {
			return err
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Names relative to srcDir, with forward slashes, resolve the sources' own imports
		// ('./lib/ECVerify.sol') and keep the metadata hash independent of the checkout.
		rel, err := filepath.Rel(srcDir, path)
		if err != nil {
			return err
		}
		sources[filepath.ToSlash(rel)] = map[string]string{"content": string(text)}
		return nil
	})
	if err != nil {
		return fmt.Errorf("build: µRaiden sources: %w", err)
	}
	if len(sources) == 0 {
		return fmt.Errorf("build: no Solidity sources in %s", srcDir)
	}
	in, err := json.Marshal(map[string]any{
		"language": "Solidity",
		"sources":  sources,
		"settings": map[string]any{
			"optimizer": map[string]any{"enabled": false},
			"outputSelection": map[string]any{
				"*": map[string]any{"*": []string{"abi", "evm.bytecode.object", "evm.deployedBytecode.object"}},
			},
		},
	})
	if err != nil {
		return err
	}
	// solc-js before 0.5 takes standard JSON through compileStandardWrapper; its compile() is
	// the older multi-source interface.
	raw, err := runSolcWith(solc, in, "compileStandardWrapper")
	if err != nil {
		return err
	}
	result, err := parseSolcOutput(raw)
	if err != nil {
		return err
	}
	// The sources are µRaiden's, verbatim: the warnings today's readers would fix stay, and
	// only errors fail the build.
	var problems []string
	for _, e := range result.Errors {
		if e.Severity == "error" {
			problems = append(problems, e.FormattedMessage)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("build: solc:\n%s", strings.Join(problems, "\n"))
	}
	c, ok := result.Contracts[MicroRaiden+".sol"][MicroRaiden]
	if !ok {
		return fmt.Errorf("build: solc produced no contract %s (files %v)", MicroRaiden, slices.Sorted(maps.Keys(result.Contracts)))
	}
	version, err := solcVersion(solc)
	if err != nil {
		return err
	}
	_, err = writeArtifacts(compiled{map[string]solcContract{MicroRaiden: c}, version}, []string{MicroRaiden}, filepath.Join(outDir, "build"))
	return err
}
