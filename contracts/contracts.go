package contracts

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Version is what the channel contract's version() returns. It stays µRaiden's so clients
// that check it keep working.
const Version = "0.2.0"

// TypedMethods are the channel contract's functions for EIP-712 typed proofs, added after
// µRaiden 0.2.0 (sorted). A µRaiden-compatible contract need not have them: without
// eip712Domain() it takes legacy proofs only.
var TypedMethods = []string{
	"cooperativeCloseTyped",
	"eip712Domain",
	"extractBalanceProofSignatureTyped",
	"extractClosingSignatureTyped",
	"withdrawTyped",
}

// MinChallengePeriod is the shortest challenge period, in blocks, the contract accepts.
const MinChallengePeriod = 500

//go:embed build/*.json
var artifacts embed.FS

// Artifact is the compiled form of one contract, as committed in build/<Name>.json.
type Artifact struct {
	ContractName        string          `json:"contractName"`
	Compiler            string          `json:"compiler"`
	ABI                 json.RawMessage `json:"abi"`
	Bytecode            hexutil.Bytes   `json:"bytecode"`
	DeployedBytecode    hexutil.Bytes   `json:"deployedBytecode"`
	ImmutableReferences map[string][]struct {
		Start  int `json:"start"`
		Length int `json:"length"`
	} `json:"immutableReferences"`
}

// LoadArtifact returns the committed artifact of a contract by name.
func LoadArtifact(name string) (*Artifact, error) {
	data, err := artifacts.ReadFile("build/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("contracts: no artifact for %s", name)
	}
	var a Artifact
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("contracts: artifact %s: %w", name, err)
	}
	return &a, nil
}

func mustArtifact(name string) *Artifact {
	a, err := LoadArtifact(name)
	if err != nil {
		panic(err)
	}
	return a
}

// The artifacts of the shipped contracts, loaded once.
var (
	ChannelsArtifact = mustArtifact("RaidenMicroTransferChannels")
	TokenArtifact    = mustArtifact("UraidenTestToken")
)

// MatchesRuntime reports whether code, read from the chain, is this artifact's runtime code.
// Immutables are written into the code at deployment, so their bytes are not compared.
func (a *Artifact) MatchesRuntime(code []byte) bool {
	want := a.DeployedBytecode
	if len(code) != len(want) {
		return false
	}
	masked := bytes.Clone(code)
	for _, refs := range a.ImmutableReferences {
		for _, r := range refs {
			copy(masked[r.Start:r.Start+r.Length], want[r.Start:r.Start+r.Length])
		}
	}
	return bytes.Equal(masked, want)
}
