//! Configuration: the node's settings (`panoptes.toml`, env overrides) and plugin files.

pub mod embedded;
pub mod origin;
mod plugin_file;
pub mod profiles;
mod settings;

pub use plugin_file::{
    load_plugin_dir, plugin_files, PluginConfig, PluginFileError, PluginKind, PluginSyntaxError,
    Preload, RateTransform, SnmpOverrides, TransformSpec,
};
pub use settings::{
    DemoSettings, HttpSettings, InfluxApi, InfluxSettings, KafkaSettings, ListenAddrError,
    LogSettings, PluginDirs, RetentionSettings, SchedulerSettings, Settings, SettingsError,
    SnmpSettings, TrapListenError, TrapSettings, UnknownDurability, DEFAULT_CONFIG,
};
