//! Configuration: the node's settings (`panoptes.toml`, env overrides) and plugin files.

mod plugin_file;
mod settings;

pub use plugin_file::{
    load_plugin_dir, PluginConfig, PluginFileError, PluginKind, PluginSyntaxError, Preload,
    RateTransform, SnmpOverrides, TransformSpec,
};
pub use settings::{
    DemoSettings, HttpSettings, InfluxApi, InfluxSettings, KafkaSettings, ListenAddrError,
    LogSettings, PluginDirs, RetentionSettings, SchedulerSettings, Settings, SettingsError,
    SnmpSettings, UnknownDurability, DEFAULT_CONFIG,
};
