export * from './png';
export * from './font';
export * from './canvas';
export * from './ticks';
export { PALETTE, seriesColor, type PlotArea } from './frame';
export * from './line-chart';
export * from './bar-chart';
export * from './stacked-bar-chart';
