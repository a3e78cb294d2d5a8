import { fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FileDescriptorProtoSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { loadSync, type PackageDefinition, type ProtobufTypeDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';

/**
 * proto-loader settings for the descriptors reflection serves: names as the .proto
 * writes them (`run_id`, not the `runId` the server's handlers use), so `grpcurl -d
 * '{"run_id": ...}'` and `describe` show the real API.
 */
const DESCRIPTOR_LOADER_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/**
 * Server reflection (grpc.reflection.v1 and v1alpha) for every service a server adds:
 * the given .proto files (relative to `includeDirs`) and the standard health service
 * `grpc.health.v1.Health`, which grpc-health-check adds from its own health.proto.
 */
export function reflectionService(protoFiles: string[], includeDirs: string[]): ReflectionService {
  return new ReflectionService(
    reflectionPackage([
      loadSync(protoFiles, { ...DESCRIPTOR_LOADER_OPTIONS, includeDirs }),
      loadSync(healthProtoPath, DESCRIPTOR_LOADER_OPTIONS),
    ]),
  );
}

/**
 * One package definition holding the file descriptors of all the given ones, made
 * valid for protobuf-go (what grpcurl builds its types with). proto-loader's
 * descriptors come from protobufjs, which names a map field's entry message `Params`
 * where protoc names it `ParamsEntry` (protobuf-go then refuses the whole file:
 * "invalid map: incorrect implicit map entry name"), drops `proto3_optional` (so a
 * client cannot tell field presence from a plain oneof), leaves out JSON names and leaves
 * type names unqualified. Each file is rewritten as protoc would have written it.
 */
export function reflectionPackage(definitions: PackageDefinition[]): PackageDefinition {
  const files = new Map<string, FileDescriptorProto>();
  for (const definition of definitions) {
    for (const type of Object.values(definition)) {
      if (!('fileDescriptorProtos' in type) || !Array.isArray(type.fileDescriptorProtos)) continue;
      for (const bytes of type.fileDescriptorProtos) {
        const file = fromBinary(FileDescriptorProtoSchema, bytes);
        if (!files.has(file.name)) files.set(file.name, file);
      }
    }
  }
  for (const file of files.values()) for (const message of file.messageType) nameMapEntries(message);
  const symbols = new Set<string>();
  for (const file of files.values()) {
    const scope = file.package;
    for (const message of file.messageType) collectSymbols(message, scope, symbols);
    for (const enumType of file.enumType) symbols.add(join(scope, enumType.name));
  }
  for (const file of files.values()) {
    for (const message of file.messageType) fixFields(message, file.package, symbols);
    for (const service of file.service) {
      for (const method of service.method) {
        method.inputType = qualify(method.inputType, join(file.package, service.name), symbols);
        method.outputType = qualify(method.outputType, join(file.package, service.name), symbols);
      }
    }
  }
  // ReflectionService reads nothing of a package definition but each entry's fileDescriptorProtos.
  const entries: Record<string, ProtobufTypeDefinition> = Object.fromEntries(
    [...files.values()].map((file) => [
      `reflection:${file.name}`,
      { format: 'Protocol Buffer 3 FileDescriptorProto', type: {}, fileDescriptorProtos: [Buffer.from(toBinary(FileDescriptorProtoSchema, file))] },
    ]),
  );
  return entries as unknown as PackageDefinition;
}

/** protobuf-go's strs.MapEntryName: the field name in CamelCase, then `Entry`. */
export function mapEntryName(fieldName: string): string {
  let name = '';
  let upperNext = true;
  for (const char of fieldName) {
    if (char === '_') {
      upperNext = true;
    } else {
      name += upperNext ? char.toUpperCase() : char;
      upperNext = false;
    }
  }
  return `${name}Entry`;
}

function join(scope: string, name: string): string {
  return scope ? `${scope}.${name}` : name;
}

/** Renames each map entry message after its field, as protoc does, and points the field at it. */
function nameMapEntries(message: DescriptorProto): void {
  for (const nested of message.nestedType) {
    if (!nested.options?.mapEntry) {
      nameMapEntries(nested);
      continue;
    }
    const field = message.field.find((f) => f.label === FieldDescriptorProto_Label.REPEATED && f.typeName.replace(/^.*\./, '') === nested.name);
    if (!field) continue;
    nested.name = mapEntryName(field.name);
    field.typeName = nested.name;
  }
}

function collectSymbols(message: DescriptorProto, scope: string, symbols: Set<string>): void {
  const name = join(scope, message.name);
  symbols.add(name);
  for (const enumType of message.enumType) symbols.add(join(name, enumType.name));
  for (const nested of message.nestedType) collectSymbols(nested, name, symbols);
}

/** protoc's JSON name of a field: `input_jsonl` → `inputJsonl`. */
function jsonName(fieldName: string): string {
  return fieldName.replace(/_+(.?)/g, (_, next: string) => next.toUpperCase());
}

/** Fully qualified type names, JSON names, and `proto3_optional` on the one field of each synthetic `_<field>` oneof. */
function fixFields(message: DescriptorProto, scope: string, symbols: Set<string>): void {
  const name = join(scope, message.name);
  for (const field of message.field) {
    if (field.typeName) field.typeName = qualify(field.typeName, name, symbols);
    if (!isFieldSet(field, FieldDescriptorProtoSchema.field.jsonName)) field.jsonName = jsonName(field.name);
    if (isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex)) {
      const oneof = message.oneofDecl[field.oneofIndex];
      const members = message.field.filter((f) => isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) && f.oneofIndex === field.oneofIndex);
      if (oneof?.name === `_${field.name}` && members.length === 1) field.proto3Optional = true;
    }
  }
  for (const nested of message.nestedType) fixFields(nested, name, symbols);
}

/** Resolves a type name as protoc does: innermost scope first, then outwards. */
function qualify(typeName: string, scope: string, symbols: Set<string>): string {
  if (!typeName || typeName.startsWith('.')) return typeName;
  for (let at = scope; ; at = at.includes('.') ? at.slice(0, at.lastIndexOf('.')) : '') {
    const candidate = join(at, typeName);
    if (symbols.has(candidate)) return `.${candidate}`;
    if (!at) return typeName;
  }
}
