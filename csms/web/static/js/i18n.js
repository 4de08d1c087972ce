// Chinese (default, the bureau's language) and English labels; numbers and dates in the
// conventions of the chosen language, times always in Asia/Shanghai.
const ZH = {
  'app.title': '阳泉市充电设施监管平台', 'skip': '跳到正文', 'loading': '正在加载…',
  'nav.main': '主导航', 'nav.overview': '运行概览', 'nav.map': '站点地图', 'nav.sessions': '充电记录',
  'nav.faults': '故障', 'nav.targets': '目标跟踪', 'nav.operations': '运营分析',
  'lang.switch': 'English', 'lang.switch.label': 'Switch to English', 'signout': '退出',
  'role.admin': '管理员', 'role.operator': '运营人员', 'role.bureau': '能源局',
  'live.on': '实时', 'live.connecting': '连接中…', 'live.retry': '重新连接中…',
  'signin.title': '登录', 'signin.intro': '请输入 API 令牌（由管理员用 “csms tokens create” 创建）。令牌只保存在本标签页中。',
  'signin.token': 'API 令牌', 'signin.submit': '登录', 'signin.bad': '令牌无效或已被吊销。',
  'signin.expired': '登录已失效，请重新登录。', 'signin.error': '无法连接服务器：',
  'error': '出错了', 'error.forbidden': '当前角色无权查看此页面。', 'retry': '重试', 'none': '无',
  'ov.title': '运行概览', 'ov.chargers': '充电桩（接入平台）', 'ov.online': '在线', 'ov.offline': '离线',
  'ov.connectors': '充电枪', 'ov.available': '空闲', 'ov.charging': '充电中', 'ov.faulted': '故障',
  'ov.unavailable': '不可用', 'ov.conn_offline': '所属桩离线',
  'ov.today': '今日充电', 'ov.sessions_today': '今日充电次数', 'ov.energy_today': '今日充电量',
  'ov.open_sessions': '进行中', 'ov.open_faults': '未关闭故障', 'ov.stations': '登记充电站',
  'ov.updated': '更新于', 'ov.events': '实时事件', 'ov.events.empty': '等待事件…',
  'ov.note': '充电枪状态只统计在线充电桩；今日 = 北京时间 0 点起。',
  'ev.status': '状态变化', 'ev.fault': '故障', 'ev.fault_opened': '故障发生', 'ev.fault_closed': '故障恢复',
  'ev.session_started': '开始充电', 'ev.session_stopped': '结束充电', 'ev.charger_connected': '上线',
  'ev.charger_disconnected': '离线', 'ev.command': '命令', 'ev.security_alarm': '安全告警', 'ev.dropped': '事件丢失',
  'map.title': '站点地图', 'map.legend': '图例（勾选以显示）', 'map.pick': '点击地图上的站点查看充电桩和充电枪。',
  'map.find': '查找站点', 'map.find.placeholder': '站点名称或编号', 'map.zoom_in': '放大', 'map.zoom_out': '缩小',
  'map.reset': '复位', 'map.stations': '个站点', 'map.noCoords': '没有坐标的站点不显示。',
  'st.faulted': '有故障', 'st.charging': '充电中', 'st.available': '空闲', 'st.unavailable': '不可用',
  'st.offline': '离线', 'st.none': '未接入平台',
  'station.piles': '充电桩', 'station.pile': '桩编号', 'station.power': '功率', 'station.type': '类型', 'current.AC': '交流', 'current.DC': '直流',
  'station.charger': '平台编号 / 充电枪', 'station.connectors': '充电枪状态', 'station.county': '县（区）',
  'station.access': '类别', 'station.address': '地址', 'station.operator': '运营商', 'station.id': '站点编号',
  'station.commissioned': '投运日期', 'station.close': '关闭',
  'access.public': '公用', 'access.dedicated': '专用', 'access.private': '自用',
  'ch.title': '充电桩', 'ch.identity': '基本信息', 'ch.id': '编号', 'ch.station': '充电站', 'ch.vendor': '厂商',
  'ch.model': '型号', 'ch.serial': '序列号', 'ch.firmware': '固件版本', 'ch.version': 'OCPP 版本',
  'ch.profile': '安全等级', 'ch.registration': '注册状态', 'ch.state': '连接状态', 'ch.node': '所在节点',
  'ch.since': '连接时间', 'ch.last_seen': '最近通信', 'ch.boot': '最近启动', 'ch.connectors': '充电枪',
  'ch.connector': '枪号', 'ch.status': '状态', 'ch.error': '错误代码', 'ch.status_at': '状态时间',
  'ch.connections': '连接记录', 'ch.connected_at': '连接', 'ch.disconnected_at': '断开', 'ch.remote': '来源地址',
  'ch.close_code': '关闭代码', 'ch.sessions': '最近充电', 'ch.faults': '最近故障', 'ch.commands': '远程命令',
  'ch.history': '命令记录', 'ch.send': '发送命令', 'ch.sending': '等待充电桩应答…', 'ch.answer': '充电桩应答',
  'ch.command': '命令', 'ch.outcome': '结果', 'ch.by': '操作人', 'ch.at': '时间', 'ch.duration': '耗时（毫秒）',
  'ch.profile.0': '0 无认证', 'ch.profile.1': '1 基本认证', 'ch.profile.2': '2 TLS + 基本认证', 'ch.profile.3': '3 双向 TLS',
  'cmd.reset': '重启', 'cmd.unlock-connector': '解锁充电枪', 'cmd.change-availability': '更改可用性',
  'cmd.trigger-message': '触发上报', 'cmd.remote-start': '远程启动充电', 'cmd.remote-stop': '远程停止充电',
  'cmd.get-configuration': '读取配置', 'cmd.clear-cache': '清除授权缓存', 'cmd.get-local-list-version': '本地列表版本',
  'f.type': '类型', 'f.soft': '软重启', 'f.hard': '硬重启', 'f.connector_id': '枪号', 'f.availability': '可用性',
  'f.Operative': '可用', 'f.Inoperative': '停用', 'f.requested_message': '上报内容', 'f.id_tag': '卡号（id tag）',
  'f.transaction_id': '交易号', 'f.keys': '配置项（逗号分隔，留空为全部）',
  'out.answered': '已应答', 'out.offline': '充电桩离线', 'out.timeout': '超时', 'out.call_error': '充电桩报错',
  'out.failed': '失败', 'out.pending': '等待中',
  'conn.Available': '空闲', 'conn.Charging': '充电中', 'conn.Faulted': '故障', 'conn.Unavailable': '不可用',
  'conn.Preparing': '准备中', 'conn.SuspendedEV': '车辆暂停', 'conn.SuspendedEVSE': '桩暂停', 'conn.Finishing': '结束中',
  'conn.Reserved': '已预约', 'conn.Occupied': '占用', 'conn.Offline': '离线',
  'online': '在线', 'offline': '离线',
  'ss.title': '充电记录', 'ss.id': '序号', 'ss.charger': '充电桩', 'ss.connector': '枪号', 'ss.tag': '卡号',
  'ss.started': '开始时间', 'ss.stopped': '结束时间', 'ss.energy': '电量（千瓦时）', 'ss.status': '状态',
  'ss.reason': '结束原因', 'ss.open': '进行中', 'ss.closed': '已结束', 'ss.tx': '交易号',
  'fl.title': '故障', 'fl.id': '序号', 'fl.source': '来源', 'fl.code': '错误代码', 'fl.vendor': '厂商代码',
  'fl.info': '说明', 'fl.opened': '发生时间', 'fl.closed': '恢复时间', 'fl.open': '未关闭', 'fl.closed_s': '已关闭',
  'fl.close': '手动关闭', 'fl.closed_ok': '已关闭故障',
  'flt.charger': '充电桩编号', 'flt.station': '充电站编号', 'flt.status': '状态', 'flt.all': '全部',
  'flt.since': '起始日期', 'flt.until': '截止日期（含）', 'flt.apply': '筛选', 'flt.reset': '清除',
  'flt.export': '导出 CSV', 'flt.code': '错误代码', 'flt.tag': '卡号',
  'pg.prev': '上一页', 'pg.next': '下一页', 'pg.size': '每页', 'pg.range': '第 {from}–{to} 条，共 {total} 条',
  'pg.empty': '没有符合条件的记录',
  'tg.title': '目标跟踪', 'tg.plan': '依据', 'tg.as_of': '统计日期', 'tg.apply': '查看', 'tg.year': '年度',
  'tg.county': '县（区）', 'tg.summary': '指标完成情况', 'tg.risk': '需要关注的指标（未达标 / 存在风险）',
  'tg.risk.none': '所选日期没有未达标或存在风险的指标。',
  'tg.new': '新增公共充电桩：实际与附件1计划', 'tg.planned': '计划', 'tg.actual': '实际', 'tg.rate': '完成率',
  'tg.vpp': '车桩比（辆/公共桩）与目标', 'tg.vpp.short': '车桩比', 'tg.target': '目标', 'tg.ev': '电动汽车',
  'tg.public': '公共充电桩', 'tg.coverage': '覆盖情况', 'tg.covered': '已覆盖', 'tg.places': '场所数', 'tg.kind': '场所类别',
  'tg.distance': '充电距离', 'tg.worst': '充电距离最远的场所', 'tg.dist.hist': '行政村到最近公共充电桩的距离分布',
  'tg.dist.km': '距离（公里）', 'tg.dist.count': '行政村数', 'tg.max': '最大（公里）', 'tg.p95': '95% 分位（公里）',
  'tg.downloads': '下载报表', 'tg.dl.targets': '目标完成情况', 'tg.dl.coverage': '覆盖情况', 'tg.dl.distance': '充电距离',
  'tg.dl.operations': '运营情况（本月）', 'tg.dl.monthly': '月报（上月，XLSX）', 'tg.notes': '数据说明',
  'tg.status': '状态', 'tg.metric': '指标', 'tg.value': '实际值', 'tg.threshold': '目标值', 'tg.lower_better': '（越低越好，不高于目标为达标）',
  'tg.all_targets': '全部指标', 'tg.more': '显示全部 {n} 项', 'tg.fewer': '收起', 'tg.n_targets': '{n} 项',
  'ts.met': '达标', 'ts.not_met': '未达标', 'ts.on_track': '进度正常', 'ts.at_risk': '存在风险', 'ts.not_due': '未到期',
  'ts.no_data': '无数据', 'ts.not_tracked': '人工填报',
  'place.township': '乡镇（街道）', 'place.village': '行政村', 'place.community': '社区（居委会）', 'place.scenic_spot': '旅游景区',
  'place.highway_service_area': '高速公路服务区', 'place.road_service_area': '国省干线公路服务区',
  'place.road_parking_area': '国省干线公路停车区', 'place.taihang_station': '太行一号旅游公路驿站',
  'place.taihang_rv_camp': '太行一号旅游公路房车营地', 'place.taihang_parking': '太行一号旅游公路停车场',
  'place.residential_community': '城镇居住小区', 'place.urban_core': '核心区', 'place.urban_edge': '边缘地区',
  'place.taihang_road': '太行一号旅游公路设施', 'place.national_roads': '普通国省干线公路服务区、停车区',
  'op.title': '运营分析', 'op.months': '月数', 'op.end': '截止月份', 'op.util': '时间利用率', 'op.avail': '可用率',
  'op.faults': '故障次数', 'op.sessions': '充电次数', 'op.energy': '充电量（千瓦时）', 'op.mttr': '平均修复时间（小时）',
  'op.reporting': '接入平台桩数', 'op.in_service': '在运桩数', 'op.month': '月份', 'op.table': '明细',
  'op.def': '利用率 = 充电时间 ÷ 在运时间；可用率 = 1 − （故障/不可用时间 + 离线时间）÷ 在运时间；只统计接入平台的充电桩。',
  'unit.kwh': '千瓦时', 'unit.km': '公里', 'unit.piles': '个', 'yes': '是', 'no': '否',
};

const EN = {
  'app.title': 'Yangquan charging network', 'skip': 'Skip to content', 'loading': 'Loading…',
  'nav.main': 'Main navigation', 'nav.overview': 'Overview', 'nav.map': 'Map', 'nav.sessions': 'Sessions',
  'nav.faults': 'Faults', 'nav.targets': 'Targets', 'nav.operations': 'Operations',
  'lang.switch': '中文', 'lang.switch.label': '切换到中文', 'signout': 'Sign out',
  'role.admin': 'admin', 'role.operator': 'operator', 'role.bureau': 'energy bureau',
  'live.on': 'live', 'live.connecting': 'connecting…', 'live.retry': 'reconnecting…',
  'signin.title': 'Sign in', 'signin.intro': 'Enter an API token (an admin creates one with “csms tokens create”). The token is kept in this tab only.',
  'signin.token': 'API token', 'signin.submit': 'Sign in', 'signin.bad': 'The token is invalid or revoked.',
  'signin.expired': 'Your session has ended; please sign in again.', 'signin.error': 'Cannot reach the server: ',
  'error': 'Something went wrong', 'error.forbidden': 'Your role may not see this page.', 'retry': 'Retry', 'none': 'none',
  'ov.title': 'Network overview', 'ov.chargers': 'Chargers (connected to the platform)', 'ov.online': 'online', 'ov.offline': 'offline',
  'ov.connectors': 'Connectors', 'ov.available': 'available', 'ov.charging': 'charging', 'ov.faulted': 'faulted',
  'ov.unavailable': 'unavailable', 'ov.conn_offline': 'charger offline',
  'ov.today': 'Charging today', 'ov.sessions_today': 'Sessions today', 'ov.energy_today': 'Energy today',
  'ov.open_sessions': 'in progress', 'ov.open_faults': 'Open faults', 'ov.stations': 'registered stations',
  'ov.updated': 'updated', 'ov.events': 'Live events', 'ov.events.empty': 'Waiting for events…',
  'ov.note': 'Connector states count online chargers only; today = since midnight Beijing time.',
  'ev.status': 'status', 'ev.fault': 'fault', 'ev.fault_opened': 'fault opened', 'ev.fault_closed': 'fault closed',
  'ev.session_started': 'session started', 'ev.session_stopped': 'session stopped', 'ev.charger_connected': 'connected',
  'ev.charger_disconnected': 'disconnected', 'ev.command': 'command', 'ev.security_alarm': 'security alarm', 'ev.dropped': 'events lost',
  'map.title': 'Station map', 'map.legend': 'Legend (tick to show)', 'map.pick': 'Click a station on the map to see its piles and connectors.',
  'map.find': 'Find a station', 'map.find.placeholder': 'station name or id', 'map.zoom_in': 'Zoom in', 'map.zoom_out': 'Zoom out',
  'map.reset': 'Reset', 'map.stations': 'stations', 'map.noCoords': 'Stations without coordinates are not shown.',
  'st.faulted': 'fault', 'st.charging': 'charging', 'st.available': 'available', 'st.unavailable': 'unavailable',
  'st.offline': 'offline', 'st.none': 'not connected to the platform',
  'station.piles': 'Piles', 'station.pile': 'Pile', 'station.power': 'Power', 'station.type': 'Type', 'current.AC': 'AC', 'current.DC': 'DC',
  'station.charger': 'Charger / connectors', 'station.connectors': 'Connectors', 'station.county': 'County',
  'station.access': 'Access', 'station.address': 'Address', 'station.operator': 'Operator', 'station.id': 'Station id',
  'station.commissioned': 'Commissioned', 'station.close': 'Close',
  'access.public': 'public', 'access.dedicated': 'dedicated', 'access.private': 'private',
  'ch.title': 'Charger', 'ch.identity': 'Identity', 'ch.id': 'Id', 'ch.station': 'Station', 'ch.vendor': 'Vendor',
  'ch.model': 'Model', 'ch.serial': 'Serial number', 'ch.firmware': 'Firmware', 'ch.version': 'OCPP version',
  'ch.profile': 'Security profile', 'ch.registration': 'Registration', 'ch.state': 'Connection', 'ch.node': 'Node',
  'ch.since': 'Connected since', 'ch.last_seen': 'Last seen', 'ch.boot': 'Last boot', 'ch.connectors': 'Connectors',
  'ch.connector': 'Connector', 'ch.status': 'Status', 'ch.error': 'Error code', 'ch.status_at': 'Since',
  'ch.connections': 'Connection history', 'ch.connected_at': 'Connected', 'ch.disconnected_at': 'Disconnected', 'ch.remote': 'Address',
  'ch.close_code': 'Close code', 'ch.sessions': 'Recent sessions', 'ch.faults': 'Recent faults', 'ch.commands': 'Commands',
  'ch.history': 'Command history', 'ch.send': 'Send command', 'ch.sending': 'Waiting for the charger…', 'ch.answer': "Charger's answer",
  'ch.command': 'Command', 'ch.outcome': 'Outcome', 'ch.by': 'By', 'ch.at': 'At', 'ch.duration': 'Duration (ms)',
  'ch.profile.0': '0 none', 'ch.profile.1': '1 Basic auth', 'ch.profile.2': '2 TLS + Basic', 'ch.profile.3': '3 mutual TLS',
  'cmd.reset': 'Reset', 'cmd.unlock-connector': 'Unlock connector', 'cmd.change-availability': 'Change availability',
  'cmd.trigger-message': 'Trigger message', 'cmd.remote-start': 'Remote start', 'cmd.remote-stop': 'Remote stop',
  'cmd.get-configuration': 'Get configuration', 'cmd.clear-cache': 'Clear cache', 'cmd.get-local-list-version': 'Local list version',
  'f.type': 'Type', 'f.soft': 'soft', 'f.hard': 'hard', 'f.connector_id': 'Connector', 'f.availability': 'Availability',
  'f.Operative': 'Operative', 'f.Inoperative': 'Inoperative', 'f.requested_message': 'Message', 'f.id_tag': 'Id tag',
  'f.transaction_id': 'Transaction id', 'f.keys': 'Keys (comma-separated, empty = all)',
  'out.answered': 'answered', 'out.offline': 'charger offline', 'out.timeout': 'timed out', 'out.call_error': 'charger error',
  'out.failed': 'failed', 'out.pending': 'pending',
  'conn.Available': 'Available', 'conn.Charging': 'Charging', 'conn.Faulted': 'Faulted', 'conn.Unavailable': 'Unavailable',
  'conn.Preparing': 'Preparing', 'conn.SuspendedEV': 'Suspended (EV)', 'conn.SuspendedEVSE': 'Suspended (EVSE)', 'conn.Finishing': 'Finishing',
  'conn.Reserved': 'Reserved', 'conn.Occupied': 'Occupied', 'conn.Offline': 'Offline',
  'online': 'online', 'offline': 'offline',
  'ss.title': 'Sessions', 'ss.id': 'No.', 'ss.charger': 'Charger', 'ss.connector': 'Conn.', 'ss.tag': 'Id tag',
  'ss.started': 'Started', 'ss.stopped': 'Stopped', 'ss.energy': 'Energy (kWh)', 'ss.status': 'Status',
  'ss.reason': 'Stop reason', 'ss.open': 'open', 'ss.closed': 'closed', 'ss.tx': 'Transaction',
  'fl.title': 'Faults', 'fl.id': 'No.', 'fl.source': 'Source', 'fl.code': 'Error code', 'fl.vendor': 'Vendor code',
  'fl.info': 'Info', 'fl.opened': 'Opened', 'fl.closed': 'Closed', 'fl.open': 'open', 'fl.closed_s': 'closed',
  'fl.close': 'Close', 'fl.closed_ok': 'Closed fault',
  'flt.charger': 'Charger id', 'flt.station': 'Station id', 'flt.status': 'Status', 'flt.all': 'all',
  'flt.since': 'From', 'flt.until': 'To (inclusive)', 'flt.apply': 'Filter', 'flt.reset': 'Clear',
  'flt.export': 'Export CSV', 'flt.code': 'Error code', 'flt.tag': 'Id tag',
  'pg.prev': 'Previous', 'pg.next': 'Next', 'pg.size': 'Per page', 'pg.range': '{from}–{to} of {total}',
  'pg.empty': 'Nothing matches',
  'tg.title': 'Plan targets', 'tg.plan': 'Plan', 'tg.as_of': 'As of', 'tg.apply': 'Show', 'tg.year': 'Year',
  'tg.county': 'County', 'tg.summary': 'Targets by status', 'tg.risk': 'Targets needing attention (not met / at risk)',
  'tg.risk.none': 'No target is not met or at risk on this date.',
  'tg.new': 'New public piles: actual vs plan (annex 1)', 'tg.planned': 'Plan', 'tg.actual': 'Actual', 'tg.rate': 'Done',
  'tg.vpp': 'Vehicles per public pile vs target', 'tg.vpp.short': 'Vehicles/pile', 'tg.target': 'Target', 'tg.ev': 'EVs',
  'tg.public': 'Public piles', 'tg.coverage': 'Coverage', 'tg.covered': 'Covered', 'tg.places': 'Places', 'tg.kind': 'Kind of place',
  'tg.distance': 'Charging distance', 'tg.worst': 'Places farthest from a public pile', 'tg.dist.hist': 'Distance from villages to the nearest public pile',
  'tg.dist.km': 'Distance (km)', 'tg.dist.count': 'Villages', 'tg.max': 'Max (km)', 'tg.p95': 'p95 (km)',
  'tg.downloads': 'Download reports', 'tg.dl.targets': 'Targets', 'tg.dl.coverage': 'Coverage', 'tg.dl.distance': 'Distance',
  'tg.dl.operations': 'Operations (this month)', 'tg.dl.monthly': 'Monthly report (last month, XLSX)', 'tg.notes': 'Data notes',
  'tg.status': 'Status', 'tg.metric': 'Target', 'tg.value': 'Value', 'tg.threshold': 'Threshold', 'tg.lower_better': '(lower is better; met at or below the target)',
  'tg.all_targets': 'All targets', 'tg.more': 'Show all {n}', 'tg.fewer': 'Show fewer', 'tg.n_targets': '{n}',
  'ts.met': 'met', 'ts.not_met': 'not met', 'ts.on_track': 'on track', 'ts.at_risk': 'at risk', 'ts.not_due': 'not due',
  'ts.no_data': 'no data', 'ts.not_tracked': 'reported by hand',
  'place.township': 'Townships', 'place.village': 'Villages', 'place.community': 'Communities', 'place.scenic_spot': 'Scenic spots',
  'place.highway_service_area': 'Highway service areas', 'place.road_service_area': 'Road service areas',
  'place.road_parking_area': 'Road parking areas', 'place.taihang_station': 'Taihang No.1 road stations',
  'place.taihang_rv_camp': 'Taihang No.1 RV camps', 'place.taihang_parking': 'Taihang No.1 parking lots',
  'place.residential_community': 'Residential communities', 'place.urban_core': 'Core area', 'place.urban_edge': 'Edge area',
  'place.taihang_road': 'Taihang No.1 road facilities', 'place.national_roads': 'National/provincial road facilities',
  'op.title': 'Operations', 'op.months': 'Months', 'op.end': 'Up to', 'op.util': 'Utilisation', 'op.avail': 'Availability',
  'op.faults': 'Faults', 'op.sessions': 'Sessions', 'op.energy': 'Energy (kWh)', 'op.mttr': 'MTTR (h)',
  'op.reporting': 'Piles reporting', 'op.in_service': 'Piles in service', 'op.month': 'Month', 'op.table': 'Details',
  'op.def': 'Utilisation = time charging ÷ time in service; availability = 1 − (faulted/unavailable + offline time) ÷ time in service; piles connected to the platform only.',
  'unit.kwh': 'kWh', 'unit.km': 'km', 'unit.piles': '', 'yes': 'yes', 'no': 'no',
};

const DICTS = {zh: ZH, en: EN};
export const TZ = 'Asia/Shanghai';
let lang = (() => { try { return localStorage.getItem('csms.lang') === 'en' ? 'en' : 'zh'; } catch { return 'zh'; } })();

export function getLang() { return lang; }
export function setLang(value) {
  lang = value === 'en' ? 'en' : 'zh';
  try { localStorage.setItem('csms.lang', lang); } catch { /* private mode */ }
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}
const locale = () => (lang === 'zh' ? 'zh-CN' : 'en-GB');

/** The label for *key* ({name} placeholders filled from *vars*); the key itself when unknown. */
export function t(key, vars) {
  let text = DICTS[lang][key] ?? ZH[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, String(v));
  return text;
}
/** A label if the dictionary has one, else *fallback* (e.g. a status code from a charger). */
export function tOr(key, fallback) { return DICTS[lang][key] ?? ZH[key] ?? fallback; }

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export function num(v, digits = 0) {
  if (!isNum(v)) return '—';
  return new Intl.NumberFormat(locale(), {minimumFractionDigits: digits, maximumFractionDigits: digits}).format(v);
}
/** Large counts the Chinese way (万) in zh. */
export function big(v, digits = 1) {
  if (!isNum(v)) return '—';
  if (Math.abs(v) < 100000) return num(v, Number.isInteger(v) ? 0 : digits);
  return new Intl.NumberFormat(locale(), {notation: 'compact', maximumFractionDigits: digits}).format(v);
}
export function pct(v, digits = 1) {
  if (!isNum(v)) return '—';
  return new Intl.NumberFormat(locale(), {style: 'percent', minimumFractionDigits: digits, maximumFractionDigits: digits}).format(v);
}
function toDate(v) {
  if (!v) return null;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}
export function dateTime(v) {
  const d = toDate(v);
  if (!d) return '—';
  return new Intl.DateTimeFormat(locale(), {year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
    minute: '2-digit', second: '2-digit', hour12: false, timeZone: TZ}).format(d);
}
/** A calendar date (YYYY-MM-DD) as 2025年12月31日 / 31 Dec 2025. */
export function date(v) {
  if (!v) return '—';
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(v));
  if (!m) return String(v);
  if (lang === 'zh') return `${+m[1]}年${+m[2]}月${+m[3]}日`;
  return new Intl.DateTimeFormat('en-GB', {day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC'})
    .format(new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])));
}
/** A month (YYYY-MM) as 2025年11月 / Nov 2025. */
export function month(v) {
  const m = /^(\d{4})-(\d{2})/.exec(String(v || ''));
  if (!m) return '—';
  if (lang === 'zh') return `${+m[1]}年${+m[2]}月`;
  return new Intl.DateTimeFormat('en-GB', {month: 'short', year: 'numeric', timeZone: 'UTC'})
    .format(new Date(Date.UTC(+m[1], +m[2] - 1, 1)));
}
/** Today's date in Asia/Shanghai as YYYY-MM-DD. */
export function todayLocal() {
  const parts = new Intl.DateTimeFormat('en-CA', {timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit'})
    .format(new Date());
  return parts; // en-CA formats as YYYY-MM-DD
}
/** Midnight Asia/Shanghai of a YYYY-MM-DD date (plus *days*), as an ISO timestamp for the API. */
export function localMidnight(isoDate, days = 0) {
  const [y, m, d] = isoDate.split('-').map(Number);
  const utc = new Date(Date.UTC(y, m - 1, d + days) - 8 * 3600 * 1000);
  return utc.toISOString();
}
