package admin

// The API's bodies, for the external tests to decode answers into: a field the server adds,
// renames or drops is one the tests see, which a copy of the struct would miss.
type (
	StatsBody     = statsBody
	ChannelBody   = channelBody
	CloseResponse = closeResponse
	ErrorBody     = errorBody
)
