/** sluice as a library: the embedding API, the lifecycle machine for your own tests, and the error classes. */
export { HttpProxy, type HttpProxyOptions, type LifecycleHooks } from './http-proxy.ts';
export {
  lifecycleMachine,
  exitCodeOf,
  type LifecycleContext,
  type LifecycleEvent,
  type LifecycleInput,
  type LifecycleState,
  type ListenerCommand,
  type StopReason,
} from './machines/lifecycle.ts';
export { transitionInspector, type TransitionRecord } from './machines/history.ts';
export {
  errorCodes,
  SluiceError,
  ConfigError,
  UsageError,
  PidFileLockedError,
  StartupTimeout,
  ListenError,
  WorkerFailedError,
  AlreadyServingError,
  UnknownBackendError,
  type ErrorCode,
} from './errors.ts';
export type {
  Session,
  ProxyView,
  RequestHooks,
  RequestFilterResult,
  PeerChoice,
  HeaderMap,
} from './listener/request-hooks.ts';
export { loadConfigFile as loadConfig } from './config/load.ts';
export type { Config, ConfigInput } from './config/schema.ts';
