package rdn

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// ChannelID identifies a channel of one receiver on one contract: µRaiden keys channels by
// sender and the block the channel was opened in (RDN-Sender-Address, RDN-Open-Block).
type ChannelID struct {
	Sender    common.Address
	OpenBlock uint32
}

// String is "<sender, EIP-55 checksummed hex>/<open block in decimal>".
func (id ChannelID) String() string { return fmt.Sprintf("%s/%d", id.Sender, id.OpenBlock) }
