package client

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// ProofScheme says which proof scheme the client signs in (docs/protocol.md §2.1).
type ProofScheme string

const (
	// ProofSchemeAuto (the default, also the zero value "") signs typed (EIP-712) proofs
	// whenever the server's 402 offers them under our chain and contract, legacy ones
	// otherwise.
	ProofSchemeAuto ProofScheme = "auto"
	// ProofSchemeEIP712 signs typed proofs only: a server that does not offer them is not paid.
	ProofSchemeEIP712 ProofScheme = rdn.SchemeTypedName
	// ProofSchemeLegacy signs µRaiden 0.2.0's proofs only.
	ProofSchemeLegacy ProofScheme = rdn.SchemeLegacyName
)

// ParseProofScheme reads "auto", "eip712" or "legacy", exactly: a misspelt choice that fell
// back to auto would sign in a scheme the user meant to avoid.
func ParseProofScheme(text string) (ProofScheme, error) {
	switch p := ProofScheme(text); p {
	case ProofSchemeAuto, ProofSchemeEIP712, ProofSchemeLegacy:
		return p, nil
	}
	return "", fmt.Errorf(`proof scheme must be "auto", "eip712" or "legacy", got %q`, text)
}

// forced is the scheme a choice other than auto pins.
func (p ProofScheme) forced() (rdn.Scheme, bool) {
	switch p {
	case ProofSchemeEIP712:
		return rdn.SchemeTyped, true
	case ProofSchemeLegacy:
		return rdn.SchemeLegacy, true
	}
	return rdn.SchemeLegacy, false
}

// ProofSchemeError is returned when the scheme the client is configured for cannot be used
// with the server: it says what the server offers and why it does not fit.
type ProofSchemeError struct {
	Want   ProofScheme
	Reason string
}

func (e *ProofSchemeError) Error() string {
	return fmt.Sprintf("proof scheme %s cannot be used: %s", e.Want, e.Reason)
}

// offer is what a 402 says about the proof schemes it takes.
type offer struct {
	// schemes are those the server names (µRaiden 0.2.0 names none: legacy).
	schemes []rdn.Scheme
	// typedReason is empty when a typed proof signed for our chain and contract would be
	// taken, otherwise why not.
	typedReason string
}

// eip712Domain is the 402 body's "eip712_domain".
type eip712Domain struct {
	Name              string      `json:"name"`
	Version           string      `json:"version"`
	ChainID           json.Number `json:"chainId"`
	VerifyingContract string      `json:"verifyingContract"`
}

// readOffer reads RDN-Proof-Schemes and, when it names eip712, the body's eip712_domain,
// which must be ours: a typed proof signed for another chain or contract would not verify.
// Names it does not know are skipped, so a server may add schemes.
func readOffer(h http.Header, body []byte, chainID *big.Int, contract common.Address) offer {
	values := h.Values(rdn.HeaderProofSchemes)
	if len(values) == 0 {
		return offer{schemes: []rdn.Scheme{rdn.SchemeLegacy}, typedReason: "the server does not name proof schemes (a µRaiden 0.2.0 server: legacy only)"}
	}
	var o offer
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			if s, err := rdn.ParseScheme(strings.TrimSpace(name)); err == nil && !slices.Contains(o.schemes, s) {
				o.schemes = append(o.schemes, s)
			}
		}
	}
	if !slices.Contains(o.schemes, rdn.SchemeTyped) {
		o.typedReason = fmt.Sprintf("the server offers %s only", schemeList(o.schemes))
		return o
	}
	var parsed struct {
		Domain *eip712Domain `json:"eip712_domain"`
	}
	if err := json.Unmarshal(body, &parsed); err != nil || parsed.Domain == nil {
		o.typedReason = "the server offers eip712 but its 402 body has no eip712_domain"
		return o
	}
	d := parsed.Domain
	id, ok := new(big.Int).SetString(d.ChainID.String(), 10)
	switch {
	case d.Name != rdn.DomainName || d.Version != rdn.DomainVersion:
		o.typedReason = fmt.Sprintf("the server's eip712_domain is %q version %q, not %q version %q", d.Name, d.Version, rdn.DomainName, rdn.DomainVersion)
	case !ok || id.Cmp(chainID) != 0:
		o.typedReason = fmt.Sprintf("the server's eip712_domain names chain %s, the client's node is on chain %s", d.ChainID, chainID)
	case !common.IsHexAddress(d.VerifyingContract) || common.HexToAddress(d.VerifyingContract) != contract:
		o.typedReason = fmt.Sprintf("the server's eip712_domain names contract %s, the client trusts %s", d.VerifyingContract, contract)
	}
	return o
}

// choose picks the scheme of the next proof and says why, or refuses.
func (o offer) choose(p ProofScheme) (rdn.Scheme, string, error) {
	typedOK := o.typedReason == ""
	legacyOK := slices.Contains(o.schemes, rdn.SchemeLegacy)
	if want, forced := p.forced(); forced {
		switch {
		case want == rdn.SchemeTyped && !typedOK:
			return 0, "", &ProofSchemeError{Want: p, Reason: o.typedReason}
		case want == rdn.SchemeLegacy && !legacyOK:
			return 0, "", &ProofSchemeError{Want: p, Reason: fmt.Sprintf("the server offers %s only", schemeList(o.schemes))}
		}
		return want, fmt.Sprintf("forced (proof scheme %s); the server offers %s", p, schemeList(o.schemes)), nil
	}
	switch {
	case typedOK:
		return rdn.SchemeTyped, "the server offers eip712 for this chain and contract", nil
	case legacyOK:
		return rdn.SchemeLegacy, o.typedReason, nil
	}
	return 0, "", &ProofSchemeError{Want: ProofSchemeAuto, Reason: o.typedReason}
}

func schemeList(schemes []rdn.Scheme) string {
	if len(schemes) == 0 {
		return "no scheme this client knows"
	}
	names := make([]string, len(schemes))
	for i, s := range schemes {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}
