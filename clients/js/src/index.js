// uraiden's JavaScript client: pays for HTTP requests with µRaiden payment channels, in Node
// and in browsers. docs/client-js.md is its reference.
export { createPayer, Payer } from './payer.js';
export { keySigner, walletSigner, signPayment, SchemeUnsupportedError } from './signer.js';
export { memoryStore, localStorageStore } from './store.js';
export { Channels, checkContract } from './channels.js';
export { askClosingSignature, requestClosingSignature, closeRequestLifetime } from './close.js';
export { chooseScheme, readOffer } from './scheme.js';
export { prices, matchRule, DISCOVERY_VERSION } from './prices.js';
export { re2ToRegExp } from './re2.js';
export {
  LEGACY, TYPED, parseScheme, offeredSchemes, balanceProofHash, balanceProofTypedData, typedBalanceProof,
  typedCloseRequest, closeRequestText, signedBy, closedBy,
} from './proof.js';
export {
  UntrustedContractError, SpendingCapError, PriceTooHighError, ProofSchemeError, BadServerProofError, PaymentTimeoutError,
  CloseRefusedError, BadClosingSignatureError, NotOnChainError, CloseRequestedError, DiscoveryError, RuleMatchError,
} from './errors.js';
