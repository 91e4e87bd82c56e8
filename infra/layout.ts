/**
 * The server layout of a channel now lives in lambda-free-tools/src/settings/layout.ts (one place
 * for every server path and file name); re-exported here for the modules that import it from infra/.
 */
export { channelLayout, serverDefaults, type ChannelLayout, type LayoutConfig, type ServerDefaults } from '../lambda-free-tools/src/settings/layout';
