import { describe, expect, it } from 'vitest';
import { applyNetworkFlags, networkFlagReferences, parseNetworkFlag, parseNetworks, type TaskNetworks } from './network-flags.js';

describe('network flags', () => {
  it('network flags take a name, or name= or target= with repeatable alias= as in Docker', () => {
    expect(parseNetworkFlag('--network', ' front ')).toEqual({ network: 'front', aliases: [] });
    expect(parseNetworkFlag('--network', 'name=front')).toEqual({ network: 'front', aliases: [] });
    expect(parseNetworkFlag('--network', 'name=front,alias=shop,alias=www.shop')).toEqual({ network: 'front', aliases: ['shop', 'www.shop'] });
    expect(parseNetworkFlag('--network', 'alias=shop, Target=front')).toEqual({ network: 'front', aliases: ['shop'] });
  });

  const refused: Array<[string, string]> = [
    ['', 'invalid value "" for --network: a network name is required'],
    ['name=front,driver-opt=x=y', 'invalid value "name=front,driver-opt=x=y" for --network: unknown field "driver-opt" (use name or alias)'],
    ['alias=shop', 'invalid value "alias=shop" for --network: the network is missing (name=NETWORK)'],
    ['name=,alias=shop', 'the network is missing (name=NETWORK)'],
    ['name=front,target=back', 'the network is given twice'],
    ['name=front,alias=', 'an alias must not be empty'],
    ['name=front,shop', '"shop" must be KEY=VALUE'],
  ];
  it.each(refused)('network flags refuse %j, naming the flag', (value, message) => {
    expect(() => parseNetworkFlag('--network', value)).toThrow(message);
  });

  it('network flags keep each network once, in order, with entries only for networks that have aliases', () => {
    expect(parseNetworks('--network', ['front', 'name=back,alias=db', 'name=edge'])).toEqual({ networks: ['front', 'back', 'edge'], networkAliases: [{ network: 'back', aliases: ['db'] }] });
    expect(() => parseNetworks('--network', ['a', 'name=a,alias=x'])).toThrow('invalid value "a" for --network: given twice');
  });

  const current: TaskNetworks = { networks: ['id-front', 'id-back'], networkAliases: [{ network: 'id-front', aliases: ['shop'] }, { network: 'id-back', aliases: ['db'] }] };
  const ids = new Map([['front', 'id-front'], ['back', 'id-back'], ['edge', 'id-edge']]);

  it('network flags name the networks to look up, from both --network-add and --network-rm', () => {
    expect(networkFlagReferences(['name=edge,alias=x', 'front'], [' back', 'front'])).toEqual(['edge', 'front', 'back']);
  });

  it('network flags drop a removed network with its aliases, by name or id', () => {
    expect(applyNetworkFlags(current, [], ['front'], ids)).toEqual({ networks: ['id-back'], networkAliases: [{ network: 'id-back', aliases: ['db'] }] });
    expect(applyNetworkFlags(current, [], ['id-back'], ids)).toEqual({ networks: ['id-front'], networkAliases: [{ network: 'id-front', aliases: ['shop'] }] });
  });

  it('network flags add a network with its aliases as an id, and replace the aliases of one the service is on', () => {
    expect(applyNetworkFlags(current, ['name=edge,alias=cdn'], [], ids)).toEqual({
      networks: ['id-front', 'id-back', 'id-edge'],
      networkAliases: [...current.networkAliases, { network: 'id-edge', aliases: ['cdn'] }],
    });
    expect(applyNetworkFlags(current, ['name=front,alias=store'], [], ids)).toEqual({
      networks: ['id-back', 'id-front'],
      networkAliases: [{ network: 'id-back', aliases: ['db'] }, { network: 'id-front', aliases: ['store'] }],
    });
    // Re-attaching without aliases drops the ones it had.
    expect(applyNetworkFlags(current, ['front'], [], ids).networkAliases).toEqual([{ network: 'id-back', aliases: ['db'] }]);
    // A reference the lookup did not map is left for the manager to resolve.
    expect(applyNetworkFlags(current, ['name=other,alias=x'], [], ids).networkAliases.at(-1)).toEqual({ network: 'other', aliases: ['x'] });
  });
});
