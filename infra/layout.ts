/**
 * The server layout of a channel now lives in lambda-free-tools/src/settings/layout.ts (one place
 * for every server path and file name); re-exported here for the modules that import it from infra/.
 */
export {
  backupPaths,
  channelLayout,
  serverDefaults,
  unitNames,
  type BackupConfig,
  type ChannelLayout,
  type LayoutConfig,
  type ServerDefaults,
  type UnitNames,
} from '../lambda-free-tools/src/settings/layout';
