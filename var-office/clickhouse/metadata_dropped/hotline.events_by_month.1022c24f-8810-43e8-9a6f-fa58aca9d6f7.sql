ATTACH TABLE _ UUID '1022c24f-8810-43e8-9a6f-fa58aca9d6f7'
(
    `event_id` String,
    `type` LowCardinality(String),
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `call_id` String,
    `order_id` String,
    `unit_id` LowCardinality(String),
    `answered` Nullable(Bool),
    `valid` Nullable(Bool),
    `call_type` LowCardinality(String),
    `category` LowCardinality(String),
    `resolved_online` Nullable(Bool),
    `order_type` LowCardinality(String),
    `due_at` Nullable(DateTime64(3, 'Asia/Shanghai')),
    `due_computed` Bool,
    `reason` String,
    `outcome` LowCardinality(String),
    `citizen_replied` Nullable(Bool),
    `method` LowCardinality(String),
    `satisfied` Nullable(Bool),
    `payload` String,
    `source_topic` LowCardinality(String),
    `source_partition` Int32,
    `source_offset` Int64,
    `ingested_at` DateTime64(3, 'Asia/Shanghai') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY event_id
SETTINGS index_granularity = 8192
