/**
 * The server layout of a channel now lives in lambda-free-tools/src/settings/layout.ts (one place
 * for every server path and file name); re-exported here for the modules that import it from infra/.
 */
export { backupPaths, channelLayout, unitNames, type BackupConfig, type ChannelLayout } from '../lambda-free-tools/src/settings/layout';
