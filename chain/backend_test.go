package chain_test

import (
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/uraiden/uraiden/chain"
)

// go-ethereum's simulated client serves every part, as *ethclient.Client does (backend.go).
var (
	_ chain.WatcherBackend    = simulated.Client(nil)
	_ chain.WatchtowerBackend = simulated.Client(nil)
	_ chain.ReceiverBackend   = simulated.Client(nil)
)
