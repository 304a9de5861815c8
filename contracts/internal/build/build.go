// Package build compiles the Solidity sources in contracts/src with the pinned solc-js and
// writes the artifacts (ABI, creation and runtime bytecode, immutable references) and the
// abigen v2 Go bindings that package contracts commits.
package build

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi/abigen"

	"github.com/uraiden/uraiden/internal/dev/devtools"
)

// Contracts lists the contracts that get artifacts and bindings, in binding order.
var Contracts = []string{"RaidenMicroTransferChannels", "UraidenTestToken", "TrustedDelegate"}

// Compiler settings. EVM version cancun keeps the bytecode deployable on every current
// network and L2; a high optimizer run count favours the per-call gas senders and receivers pay.
const (
	evmVersion    = "cancun"
	optimizerRuns = 100000
)

// ReferenceEVM is the EVM version of a second build, used only to compare gas with µRaiden
// 0.2.0 under the rules its published figures were measured with (Byzantium). It is written
// to build/byzantium/ and never deployed.
const ReferenceEVM = "byzantium"

// GasReferenceContracts are the contracts of the reference build.
var GasReferenceContracts = []string{"RaidenMicroTransferChannels", "UraidenTestToken"}

// ReferenceChainID stands for block.chainid in the reference build. Byzantium has no CHAINID
// opcode (EIP-1344 came with Istanbul), so solc refuses block.chainid there; the reference
// build reads the id of the chain the gas test runs it on as a constant instead. That keeps
// every function (so the dispatcher, and the legacy functions' cost, is the shipped one) at
// the price of the typed rows costing 1 gas less there (PUSH 3 against CHAINID 2, … ).
const ReferenceChainID = 1337

// Artifact is what the build writes for one contract, as build/<Name>.json.
type Artifact struct {
	ContractName        string                      `json:"contractName"`
	Compiler            string                      `json:"compiler"`
	ABI                 json.RawMessage             `json:"abi"`
	Bytecode            string                      `json:"bytecode"`
	DeployedBytecode    string                      `json:"deployedBytecode"`
	ImmutableReferences map[string][]ImmutableRange `json:"immutableReferences"`
}

// ImmutableRange is where the runtime code holds an immutable, filled in at deployment.
type ImmutableRange struct {
	Start  int `json:"start"`
	Length int `json:"length"`
}

// Generate compiles srcDir/*.sol and writes artifacts to outDir/build and the bindings to
// outDir/bindings.go.
func Generate(srcDir, outDir string) error {
	out, err := compile(srcDir, evmVersion)
	if err != nil {
		return err
	}
	arts, err := writeArtifacts(out, Contracts, filepath.Join(outDir, "build"))
	if err != nil {
		return err
	}
	var abis, bins []string
	for _, a := range arts {
		abis = append(abis, string(a.ABI))
		bins = append(bins, strings.TrimPrefix(a.Bytecode, "0x"))
	}
	code, err := abigen.BindV2(Contracts, abis, bins, "contracts", nil, nil)
	if err != nil {
		return fmt.Errorf("build: abigen: %w", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "bindings.go"), []byte(code), 0o644); err != nil {
		return err
	}
	ref, err := compile(srcDir, ReferenceEVM)
	if err != nil {
		return err
	}
	_, err = writeArtifacts(ref, GasReferenceContracts, filepath.Join(outDir, "build", ReferenceEVM))
	return err
}

func writeArtifacts(out compiled, names []string, dir string) ([]Artifact, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var arts []Artifact
	for _, name := range names {
		c, ok := out.contracts[name]
		if !ok {
			return nil, fmt.Errorf("build: solc produced no contract %s", name)
		}
		art := Artifact{
			ContractName:        name,
			Compiler:            out.version,
			ABI:                 c.ABI,
			Bytecode:            "0x" + c.EVM.Bytecode.Object,
			DeployedBytecode:    "0x" + c.EVM.DeployedBytecode.Object,
			ImmutableReferences: c.EVM.DeployedBytecode.ImmutableReferences,
		}
		data, err := json.MarshalIndent(art, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), append(data, '\n'), 0o644); err != nil {
			return nil, err
		}
		arts = append(arts, art)
	}
	return arts, nil
}

type compiled struct {
	contracts map[string]solcContract
	version   string
}

type solcContract struct {
	ABI json.RawMessage `json:"abi"`
	EVM struct {
		Bytecode struct {
			Object string `json:"object"`
		} `json:"bytecode"`
		DeployedBytecode struct {
			Object              string                      `json:"object"`
			ImmutableReferences map[string][]ImmutableRange `json:"immutableReferences"`
		} `json:"deployedBytecode"`
	} `json:"evm"`
}

// compile runs solc-js in standard-JSON mode; sources are passed by content under their base
// names, so the metadata hash (and the bytecode) does not depend on where the checkout lives.
func compile(srcDir, evm string) (compiled, error) {
	solc, err := devtools.Solc()
	if err != nil {
		return compiled{}, err
	}
	files, err := filepath.Glob(filepath.Join(srcDir, "*.sol"))
	if err != nil || len(files) == 0 {
		return compiled{}, fmt.Errorf("build: no Solidity sources in %s", srcDir)
	}
	slices.Sort(files)
	sources := map[string]map[string]string{}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return compiled{}, err
		}
		content := string(text)
		if evm == ReferenceEVM {
			content = strings.ReplaceAll(content, "block.chainid", fmt.Sprintf("uint256(%d)", ReferenceChainID))
		}
		sources[filepath.Base(f)] = map[string]string{"content": content}
	}
	input := map[string]any{
		"language": "Solidity",
		"sources":  sources,
		"settings": map[string]any{
			"evmVersion": evm,
			"optimizer":  map[string]any{"enabled": true, "runs": optimizerRuns},
			"outputSelection": map[string]any{
				"*": map[string]any{"*": []string{"abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"}},
			},
		},
	}
	in, err := json.Marshal(input)
	if err != nil {
		return compiled{}, err
	}
	raw, err := runSolc(solc, in)
	if err != nil {
		return compiled{}, err
	}
	result, err := parseSolcOutput(raw)
	if err != nil {
		return compiled{}, err
	}
	var problems []string
	for _, e := range result.Errors {
		// Warnings fail the build too: the sources are ours and should compile clean. The
		// reference build for old rules is warned about by design.
		if evm == ReferenceEVM && strings.Contains(e.FormattedMessage, "is deprecated") {
			continue
		}
		problems = append(problems, e.FormattedMessage)
	}
	if len(problems) > 0 {
		return compiled{}, fmt.Errorf("build: solc:\n%s", strings.Join(problems, "\n"))
	}
	contracts := map[string]solcContract{}
	for _, byName := range result.Contracts {
		for name, c := range byName {
			contracts[name] = c
		}
	}
	version, err := solcVersion(solc)
	if err != nil {
		return compiled{}, err
	}
	return compiled{contracts, version}, nil
}

func solcVersion(solc string) (string, error) {
	version, err := exec.Command("node", "-p", "require(process.argv[1]).version()", solc).Output()
	if err != nil {
		return "", fmt.Errorf("build: solc version: %w", err)
	}
	return strings.TrimSpace(string(version)), nil
}

// solcDriver calls solc-js's compile() and writes the result to a file: the solcjs command
// line exits before a large standard-JSON answer is flushed to a pipe.
const solcDriver = `const fs = require("fs");
const solc = require(process.argv[1]);
fs.writeFileSync(process.argv[3], solc[process.argv[4]](fs.readFileSync(process.argv[2], "utf8")));`

func runSolc(solc string, input []byte) ([]byte, error) { return runSolcWith(solc, input, "compile") }

// runSolcWith calls solc-js's function fn with the standard-JSON input.
func runSolcWith(solc string, input []byte, fn string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "uraiden-solc")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "input.json"), filepath.Join(dir, "output.json")
	if err := os.WriteFile(in, input, 0o600); err != nil {
		return nil, err
	}
	if msg, err := exec.Command("node", "-e", solcDriver, solc, in, out, fn).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: solc: %w: %s", err, msg)
	}
	return os.ReadFile(out)
}

// solcOutput is what the builds read of solc's standard JSON output.
type solcOutput struct {
	Errors []struct {
		Severity         string `json:"severity"`
		FormattedMessage string `json:"formattedMessage"`
	} `json:"errors"`
	Contracts map[string]map[string]solcContract `json:"contracts"`
}

func parseSolcOutput(raw []byte) (solcOutput, error) {
	var out solcOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("build: solc output: %w", err)
	}
	return out, nil
}
