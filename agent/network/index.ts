/** Host networking for containers: the host bridge, veths and bridge address allocation. */
export { BridgeNetwork, NetworkError, hostVethName, type BridgeNetworkOptions } from './bridge-network.js';
export { FileIpam } from './ipam.js';
export { parseSubnet, formatAddress, gatewayAddress, containerAddressRange, type Ipv4Subnet } from './subnet.js';
