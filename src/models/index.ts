export * from './init';
export * from './torch-emitter';
export * from './resnet';
export * from './fpn';
export * from './resnet-fpn';
export * from './demo-graphs';
