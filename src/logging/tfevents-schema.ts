/**
 * The subset of TensorFlow's Event / Summary protobufs that TensorBoard needs for scalars, images and
 * histograms, as a protobufjs reflection root. Field numbers are those of tensorboard/compat/proto/event.proto
 * and summary.proto (see notes/algorithms.md section 7).
 */
import * as protobuf from 'protobufjs';

const schema = {
  nested: {
    tensorboard: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['fileVersion', 'summary'] } },
          fields: {
            wallTime: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            fileVersion: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Image: {
              fields: {
                height: { type: 'int32', id: 1 },
                width: { type: 'int32', id: 2 },
                colorspace: { type: 'int32', id: 3 },
                encodedImageString: { type: 'bytes', id: 4 },
              },
            },
            Value: {
              oneofs: { value: { oneof: ['simpleValue', 'image', 'histo'] } },
              fields: {
                tag: { type: 'string', id: 1 },
                simpleValue: { type: 'float', id: 2 },
                image: { type: 'Image', id: 4 },
                histo: { type: 'HistogramProto', id: 5 },
              },
            },
          },
        },
        HistogramProto: {
          fields: {
            min: { type: 'double', id: 1 },
            max: { type: 'double', id: 2 },
            num: { type: 'double', id: 3 },
            sum: { type: 'double', id: 4 },
            sumSquares: { type: 'double', id: 5 },
            bucketLimit: { rule: 'repeated', type: 'double', id: 6, options: { packed: true } },
            bucket: { rule: 'repeated', type: 'double', id: 7, options: { packed: true } },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(schema);

/** tensorflow.Event (the record payload of an event file). */
export const EventType = root.lookupType('tensorboard.Event');
