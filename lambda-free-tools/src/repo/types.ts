/**
 * The channel value types now live at the bottom layer, in core/types.ts; this re-export keeps
 * `repo/types` importable for the files outside lambda-free-tools that still name it.
 */
export type { RoutingRule, ChannelConfig, Digests, PoolPackage, GenerationInfo } from '../core/types';
