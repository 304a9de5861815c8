// The independent leg of rdn's typed-proof known answers (rdn/typed_test.go): viem, pinned in
// package.json, hashes, signs and recovers the typed data the Go test describes.
//
// stdin: [{domain, types, primaryType, message, key, signature}], with every uint as a
// decimal string (JSON numbers lose precision above 2^53).
// stdout: [{domainSeparator, digest, signature, recovered}]: viem's domain separator and
// digest, viem's signature with key, and the address viem recovers from the Go signature.
import { hashDomain, hashTypedData, recoverTypedDataAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const domainFields = [
  { name: 'name', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'chainId', type: 'uint256' },
  { name: 'verifyingContract', type: 'address' },
];

let input = '';
for await (const chunk of process.stdin) input += chunk;

const out = [];
for (const c of JSON.parse(input)) {
  const message = {};
  for (const { name, type } of c.types[c.primaryType]) {
    message[name] = type.startsWith('uint') ? BigInt(c.message[name]) : c.message[name];
  }
  const domain = { ...c.domain, chainId: BigInt(c.domain.chainId) };
  const typedData = { domain, types: c.types, primaryType: c.primaryType, message };
  out.push({
    domainSeparator: hashDomain({ domain, types: { EIP712Domain: domainFields } }),
    digest: hashTypedData(typedData),
    signature: await privateKeyToAccount(c.key).signTypedData(typedData),
    recovered: await recoverTypedDataAddress({ ...typedData, signature: c.signature }),
  });
}
process.stdout.write(JSON.stringify(out));
