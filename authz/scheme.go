package authz

import (
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// offer is what a 402 says about the proof schemes taken (docs/protocol.md §2.1), built once:
// the header, and the JSON body's fields.
type offer struct {
	schemes []rdn.Scheme
	// domain is the typed scheme's domain separator, hashed once instead of per proof.
	domain common.Hash
	header string // RDN-Proof-Schemes' value
	names  []string
	body   *eip712Domain // nil unless typed
	hv     *corev3.HeaderValueOption
}

// eip712Domain is the 402 body's description of the typed scheme's domain, in the field
// names of EIP-712, so that a client can hand it to eth_signTypedData_v4 as it is.
type eip712Domain struct {
	Name              string `json:"name"`
	Version           string `json:"version"`
	ChainID           uint64 `json:"chainId"`
	VerifyingContract string `json:"verifyingContract"`
}

func newOffer(c *Config) *offer {
	o := &offer{schemes: c.ProofSchemes}
	if len(o.schemes) == 0 {
		o.schemes = []rdn.Scheme{rdn.SchemeLegacy}
	}
	for _, s := range o.schemes {
		o.names = append(o.names, s.String())
	}
	if o.takes(rdn.SchemeTyped) {
		domain, err := rdn.DomainSeparator(c.ChainID, c.Contract)
		if err != nil {
			// No chain id to bind proofs to: take none in the typed scheme.
			return newOffer(&Config{Contract: c.Contract})
		}
		o.domain = domain
		o.body = &eip712Domain{Name: rdn.DomainName, Version: rdn.DomainVersion, ChainID: c.ChainID,
			VerifyingContract: c.addresses().contract}
	}
	o.header = strings.Join(o.names, ", ")
	o.hv = header(rdn.HeaderProofSchemes, o.header)
	return o
}

// offer returns the offer built by NewService (or now, for a Config used without it).
func (c *Config) offer() *offer {
	if c.schemes != nil {
		return c.schemes
	}
	return newOffer(c)
}

func (o *offer) takes(s rdn.Scheme) bool { return slices.Contains(o.schemes, s) }

// proofHash is the hash the sender signed for this payment, in its scheme.
func (o *offer) proofHash(p *paymentHeaders, receiver, contract common.Address) (common.Hash, error) {
	if p.Scheme == rdn.SchemeTyped {
		return rdn.TypedBalanceProofHash(o.domain, receiver, p.OpenBlock, p.Balance)
	}
	return rdn.Balance{Receiver: receiver, OpenBlock: p.OpenBlock, Balance: p.Balance, Contract: contract}.Hash()
}
